package wsconn

import (
	"bufio"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

var _ Conn = (*goConn)(nil)

func newGoConn(nc net.Conn, br *bufio.Reader, cfg Config, written *atomic.Uint64) *goConn {
	c := &goConn{
		nc:      nc,
		br:      br,
		cfg:     cfg,
		written: written,
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	c.lastRead.Store(time.Now().UnixNano())
	return c
}

// goConn is a connection served by its own reader and writer goroutines.
//
// Locking: mu guards the send queue and the closing state. Send may be
// called from any goroutine.
type goConn struct {
	nc      net.Conn
	br      *bufio.Reader
	cfg     Config
	h       Handler
	written *atomic.Uint64 // the Upgrader's count of bytes written

	mu         sync.Mutex
	queue      []outFrame
	spare      []outFrame
	queued     int    // bytes of queue, headers included
	pong       []byte // a pong not yet taken by the writer: see queuePong
	closing    bool
	sentClose  bool  // the writer has written the close frame
	peerClosed bool  // the client's close frame arrived
	fatal      error // the client broke the protocol

	reader frameReader // the reader goroutine's

	// The writer goroutine's: the batch as buffers for one writev, header
	// and payload of each message side by side. bufs keeps the backing
	// array, which WriteTo consumes out of out.
	bufs [][]byte
	out  net.Buffers

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

// Send queues payload as one text message. It never blocks. The payload is
// not copied and must not be modified afterwards: it is written as it is,
// after a header of the connection's own. It returns ErrQueueFull when the
// queue, headers included, would exceed its byte limit, leaving the queue as
// it was, and ErrClosed once the connection is closing.
func (c *goConn) Send(payload []byte) error {
	if uint64(len(payload)) > maxPayload {
		return ErrQueueFull
	}
	f := textFrame(payload)
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.queued+f.size() > c.cfg.MaxQueueBytes {
		c.mu.Unlock()
		return ErrQueueFull
	}
	c.queue = append(c.queue, f)
	c.queued += f.size()
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
		clear(c.queue)
		c.queue = c.queue[:0]
		c.queued = 0
	} else if c.pong != nil {
		// A ping that came before the close is answered before it.
		c.queue = append(c.queue, rawFrame(c.pong))
	}
	c.pong = nil
	c.queue = append(c.queue, rawFrame(closeFrame(code, reason)))
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
		if c.pong != nil && !c.closing {
			// Behind the data: frames already queued are not delayed. Never
			// after a close frame, though: nothing may follow that.
			batch = append(batch, rawFrame(c.pong))
		}
		c.pong = nil
		closing := c.closing
		c.mu.Unlock()
		var err error
		if len(batch) > 0 {
			err = c.write(batch)
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
			c.mu.Lock()
			c.sentClose = true
			done := c.peerClosed || c.fatal != nil
			c.mu.Unlock()
			if done {
				// The client has closed too, or broke the protocol and
				// gets no more of our time.
				c.finish()
				return
			}
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

// write writes batch in one writev (as few as the kernel allows): each
// message's header, then its payload in place.
func (c *goConn) write(batch []outFrame) error {
	bufs := c.bufs[:0]
	for i := range batch {
		f := &batch[i]
		if f.hlen > 0 {
			bufs = append(bufs, f.hdr[:f.hlen])
		}
		if f.n > 0 {
			bufs = append(bufs, f.payload())
		}
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
	c.out = bufs
	n, err := c.out.WriteTo(c.nc)
	c.written.Add(uint64(n))
	if c.cfg.afterWrite != nil {
		c.cfg.afterWrite()
	}
	clear(bufs) // drop the references to payloads for the collector
	c.bufs, c.out = bufs[:0], nil
	return err
}

// readLoop reads frames until the connection ends.
func (c *goConn) readLoop() {
	defer c.wg.Done()
	err := c.readFrames()
	c.finish()
	c.h.HandleClose(err)
}

// readFrames feeds what the client sends to the frame reader, the same one
// the epoll transport uses, so both enforce RFC 6455 alike. It reads in
// place from the connection's bufio.Reader (the frame reader unmasks in
// place, and the bytes are discarded after), so a connection holds no
// second buffer. After the client's close frame or a violation it keeps
// reading, and ignoring, until the socket ends: the writer sends the close
// frame meanwhile and then drops the socket or gives the client closeGrace
// to hang up.
func (c *goConn) readFrames() error {
	for {
		_, err := c.br.Peek(1) // waits for bytes, and reads what is there
		if n := c.br.Buffered(); n > 0 {
			c.lastRead.Store(time.Now().UnixNano())
			p, _ := c.br.Peek(n)
			ferr := c.reader.feed(p, readLimit(c.cfg.MaxMessageBytes), c)
			c.br.Discard(n)
			if ferr != nil {
				c.fail(ferr)
			}
		}
		if err != nil {
			c.mu.Lock()
			fatal, peerClosed, sent := c.fatal, c.peerClosed, c.sentClose
			c.mu.Unlock()
			if (fatal != nil || peerClosed) && !sent {
				// The client owes nothing more, but is owed the close
				// frame the writer has queued: a client may send its
				// close frame and shut down its side of the socket at
				// once, reading on. The writer ends the connection once
				// that frame is out, or its write fails or times out;
				// dropping the socket now would cut the frame off.
				c.awaitWriter()
			}
			switch {
			case fatal != nil:
				return fatal
			case peerClosed:
				return io.EOF
			}
			return err
		}
	}
}

// awaitWriter waits for the writer to end the connection, which it does
// within WriteTimeout once its close frame is queued; the timer only
// guards against a writer that somehow does not.
func (c *goConn) awaitWriter() {
	t := time.NewTimer(c.cfg.WriteTimeout + closeGrace)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
	}
}

// The frameSink methods run on the reader goroutine, from feed.

func (c *goConn) message(data []byte) { c.h.HandleMessage(data) }

func (c *goConn) ping(payload []byte) { c.queuePong(appendFrame(nil, opPong, payload)) }

func (c *goConn) peerClose(code int) {
	c.mu.Lock()
	c.peerClosed = true
	sent := c.sentClose
	c.mu.Unlock()
	c.Close(code, "")
	if sent {
		c.finish() // both close frames are through: the socket is done
	}
}

// fail fails the connection on a client error with the matching close code.
func (c *goConn) fail(err error) {
	c.mu.Lock()
	c.fatal = err
	sent := c.sentClose
	c.mu.Unlock()
	code, reason := CloseCodeFor(err)
	c.Close(code, reason)
	if sent {
		c.finish()
	}
}

// queuePong answers a ping. A pong the writer has not taken yet is
// replaced rather than joined (RFC 6455 §5.5.3 lets an endpoint answer only
// the latest ping), so a client that floods pings and never reads holds one
// pending pong, not one per ping; and none is queued once the client is a
// full queue behind.
func (c *goConn) queuePong(frame []byte) {
	c.mu.Lock()
	if c.closing || c.queued+len(frame) > c.cfg.MaxQueueBytes {
		c.mu.Unlock()
		return
	}
	c.pong = frame
	c.mu.Unlock()
	c.signal()
}
