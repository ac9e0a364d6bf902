package wsconn

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

var _ Conn = (*goConn)(nil)

func newGoConn(nc net.Conn, br *bufio.Reader, cfg Config) *goConn {
	c := &goConn{
		nc:   nc,
		br:   br,
		cfg:  cfg,
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	c.lastRead.Store(time.Now().UnixNano())
	return c
}

// goConn is a connection served by its own reader and writer goroutines.
//
// Locking: mu guards the send queue and the closing state. Send may be
// called from any goroutine.
type goConn struct {
	nc  net.Conn
	br  *bufio.Reader
	cfg Config
	h   Handler

	mu      sync.Mutex
	queue   [][]byte
	spare   [][]byte
	queued  int
	closing bool

	wake     chan struct{}
	done     chan struct{}
	doneOnce sync.Once
	lastRead atomic.Int64 // unix nanos of the last frame read
	wg       sync.WaitGroup
}

// Start implements Conn: it runs the reader and writer goroutines.
func (c *goConn) Start(h Handler) {
	c.h = h
	c.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
}

// LastRead is when the last frame of any kind arrived from the client.
func (c *goConn) LastRead() time.Time { return time.Unix(0, c.lastRead.Load()) }

// Send queues a pre-framed server frame (see AppendText). It never blocks.
// The frame is not copied and must not be modified afterwards. It returns
// ErrQueueFull when the queue would exceed its byte limit, leaving the queue
// as it was, and ErrClosed once the connection is closing.
func (c *goConn) Send(frame []byte) error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.queued+len(frame) > c.cfg.MaxQueueBytes {
		c.mu.Unlock()
		return ErrQueueFull
	}
	c.queue = append(c.queue, frame)
	c.queued += len(frame)
	c.mu.Unlock()
	c.signal()
	return nil
}

// Close queues a close frame after whatever is queued and ends the
// connection once it is written. Later calls do nothing.
func (c *goConn) Close(code int, reason string) {
	c.close(code, reason, false)
}

// Abort is Close for a client that does not read: the queued frames are
// dropped and only the close frame is sent.
func (c *goConn) Abort(code int, reason string) {
	c.close(code, reason, true)
}

func (c *goConn) close(code int, reason string, drop bool) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	if drop {
		c.queue = c.queue[:0]
		c.queued = 0
	}
	c.queue = append(c.queue, closeFrame(code, reason))
	c.mu.Unlock()
	c.signal()
}

func (c *goConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *goConn) finish() {
	c.doneOnce.Do(func() {
		close(c.done)
		c.nc.Close()
	})
}

// writeLoop writes everything queued since its last write in one writev.
func (c *goConn) writeLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		// Swap the queue with the spare slice: senders fill one backing
		// array while this goroutine writes the other. The two must never
		// alias, so spare is only ever the batch just written.
		//
		// The batch stops counting against MaxQueueBytes now, not once it
		// is written: the client may read it before this goroutine runs
		// again, and must not be charged for bytes it already has.
		c.mu.Lock()
		batch := c.queue
		c.queue = c.spare
		c.spare = nil
		c.queued = 0
		closing := c.closing
		c.mu.Unlock()
		var err error
		if len(batch) > 0 {
			c.nc.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
			bufs := net.Buffers(batch)
			_, err = bufs.WriteTo(c.nc)
			if c.cfg.afterWrite != nil {
				c.cfg.afterWrite()
			}
			clear(batch)
		}
		c.mu.Lock()
		c.spare = batch[:0]
		c.mu.Unlock()
		if err != nil {
			c.finish()
			return
		}
		if closing {
			// The close frame was the last thing queued. Half-close and let
			// the reader wait briefly for the client's reply before the
			// socket is dropped, so the client reads the close frame instead
			// of a reset.
			if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
				tc.CloseWrite()
			}
			c.nc.SetReadDeadline(time.Now().Add(closeGrace))
			return
		}
	}
}

// readLoop reads frames until the connection ends.
func (c *goConn) readLoop() {
	defer c.wg.Done()
	err := c.readFrames()
	c.finish()
	c.h.HandleClose(err)
}

func (c *goConn) readFrames() error {
	var msg []byte
	inMessage, discarding := false, false
	discarded := 0
	for {
		hdr, err := ws.ReadHeader(c.br)
		if err != nil {
			return err
		}
		c.lastRead.Store(time.Now().UnixNano())
		if !hdr.Masked || hdr.Rsv != 0 {
			c.Close(CloseProtocolError, "protocol error")
			return errors.New("wsconn: unmasked or extended frame")
		}
		if hdr.OpCode.IsControl() {
			if hdr.Length > 125 || !hdr.Fin {
				c.Close(CloseProtocolError, "bad control frame")
				return errors.New("wsconn: bad control frame")
			}
			p := make([]byte, hdr.Length)
			if _, err := io.ReadFull(c.br, p); err != nil {
				return err
			}
			ws.Cipher(p, hdr.Mask, 0)
			switch hdr.OpCode {
			case ws.OpPing:
				c.sendControl(appendFrame(nil, opPong, p))
			case ws.OpClose:
				code := CloseNormal
				if len(p) >= 2 {
					code = int(p[0])<<8 | int(p[1])
				}
				c.Close(code, "")
				return io.EOF
			}
			continue
		}
		switch hdr.OpCode {
		case ws.OpText, ws.OpBinary:
			if inMessage {
				c.Close(CloseProtocolError, "unexpected new message")
				return errors.New("wsconn: new message inside a fragmented one")
			}
			inMessage, msg, discarding, discarded = true, msg[:0], false, 0
		case ws.OpContinuation:
			if !inMessage {
				c.Close(CloseProtocolError, "unexpected continuation")
				return errors.New("wsconn: continuation without a message")
			}
		default:
			c.Close(CloseProtocolError, "unknown opcode")
			return fmt.Errorf("wsconn: unknown opcode %d", hdr.OpCode)
		}
		if discarding || len(msg)+int(hdr.Length) > c.cfg.MaxMessageBytes || hdr.Length > int64(c.cfg.MaxMessageBytes) {
			// Too large: skip the payload without buffering it.
			if !discarding {
				discarded = len(msg)
				discarding = true
			}
			if _, err := io.CopyN(io.Discard, c.br, hdr.Length); err != nil {
				return err
			}
			discarded += int(hdr.Length)
		} else {
			start := len(msg)
			msg = append(msg, make([]byte, hdr.Length)...)
			if _, err := io.ReadFull(c.br, msg[start:]); err != nil {
				return err
			}
			ws.Cipher(msg[start:], hdr.Mask, 0)
		}
		if !hdr.Fin {
			continue
		}
		inMessage = false
		if discarding {
			c.h.HandleTooLarge(discarded)
			continue
		}
		c.h.HandleMessage(msg)
		if cap(msg) > 4096 {
			msg = nil // do not pin a large buffer to an idle connection
		}
	}
}

// sendControl queues a control frame even if the data queue is full, so a
// ping is answered while the client is still within its limits.
func (c *goConn) sendControl(frame []byte) {
	c.mu.Lock()
	if !c.closing {
		c.queue = append(c.queue, frame)
		c.queued += len(frame)
	}
	c.mu.Unlock()
	c.signal()
}
