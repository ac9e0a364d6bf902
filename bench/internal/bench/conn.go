package bench

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// maxFramePayload bounds one frame from the server: Pusher events are at
// most 10 KB of data, presence subscription replies a few more.
const maxFramePayload = 1 << 20

// errClosedByServer ends a reader when the server sent a close frame.
var errClosedByServer = errors.New("closed by server")

// shard holds the measurements of one reader goroutine (an epoll loop, or a
// slice of the per-connection goroutines), so readers do not share counters.
type shard struct {
	lat       Histogram // publish → receipt of first receipts
	lat2      Histogram // a second latency, per scenario (presence: member_removed)
	unique    atomic.Uint64
	errors    atomic.Uint64 // pusher:error messages
	closed    atomic.Uint64 // connections the server closed or lost
	lastRecv  atomic.Int64  // unix nanos of the latest first receipt
	pongsSent atomic.Uint64
}

// sink is a scenario's handling of the messages its connections receive,
// beyond the protocol chores every connection does itself. It runs on the
// connection's reader and may touch the connection's own state freely.
type sink interface {
	message(c *conn, event, msg []byte, now int64, sh *shard)
}

// conn is one client connection. Its reading state belongs to whoever reads
// it: the dialing goroutine until the connection is handed to a reader, then
// that reader. Writes may come from any goroutine and are serialised by wmu.
type conn struct {
	id int
	sk sink

	// Exactly one of nc and fd is in use: nc while dialing and for the
	// goroutine reader, fd (a duplicate, out of the Go runtime's poller)
	// for the epoll reader.
	nc net.Conn
	fd int

	// dial is a raw dial under way (see rawdial.go); the epoll loop
	// serving the connection owns it.
	dial *dialState

	wmu     sync.Mutex
	wclosed bool

	carry []byte // an incomplete frame waiting for more bytes
	frag  []byte // a fragmented message being reassembled

	socketID   string
	centrifugo bool         // speaks the Centrifugo client protocol
	cfPong     bool         // centrifugo: the server asked for pongs
	cfNextID   uint32       // centrifugo: the last command id used
	subscribed int          // subscription_succeeded messages seen
	subFailed  []byte       // first subscription error, if any
	closeCode  atomic.Int32 // of the server's close frame, if one came

	// Scenario state.
	chanBase int      // global index of the connection's first channel
	streams  []Stream // channel-major: streams[k*S+s]
	counts   Counts
	subOK    chan bool // presence churners: true on subscription_succeeded, false on an error
}

// feed parses the frames in data and carries an incomplete one over.
func (c *conn) feed(data []byte, now int64, sh *shard) error {
	if len(c.carry) > 0 {
		c.carry = append(c.carry, data...)
		data = c.carry
	}
	for len(data) > 0 {
		f, n, err := nextFrame(data, maxFramePayload)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		if err := c.frame(f, now, sh); err != nil {
			return err
		}
		data = data[n:]
	}
	switch {
	case len(data) == 0:
		c.carry = nil
	case len(c.carry) > 0 && &data[0] == &c.carry[0]:
		// Still the start of the same carried frame.
	default:
		// Size the carry for the whole frame at once when its header is in.
		need := max(frameLen(data), len(data))
		buf := make([]byte, len(data), need)
		copy(buf, data)
		c.carry = buf
	}
	return nil
}

func (c *conn) frame(f frame, now int64, sh *shard) error {
	switch f.op {
	case opText, opBinary:
		if !f.fin {
			c.frag = append(c.frag[:0], f.payload...)
			return nil
		}
		c.message(f.payload, now, sh)
	case opContinuation:
		c.frag = append(c.frag, f.payload...)
		if f.fin {
			msg := c.frag
			c.frag = nil
			c.message(msg, now, sh)
		}
	case opPing:
		sh.pongsSent.Add(1)
		return c.writeFrame(opPong, f.payload)
	case opClose:
		c.closeCode.Store(int32(closeCode(f.payload)))
		return errClosedByServer
	}
	return nil
}

// message does the protocol chores (handshake, subscriptions, pings) and
// hands everything else to the scenario.
func (c *conn) message(msg []byte, now int64, sh *shard) {
	if c.centrifugo {
		c.centrifugoMessage(msg, now, sh)
		return
	}
	ev := eventOf(msg)
	switch string(ev) {
	case EventName:
		// The hot path: straight to the scenario.
	case evConnectionEstablished:
		if id := valueOf(msg, "socket_id"); len(id) > 0 {
			c.socketID = string(id)
		}
		return
	case evPing:
		sh.pongsSent.Add(1)
		c.writeMessage(pongMessage)
		return
	case evSubscriptionSucceeded:
		c.subscribed++
		c.signalSub(true)
		return
	case evError, evSubscriptionError:
		sh.errors.Add(1)
		if c.subFailed == nil {
			c.subFailed = bytes.Clone(msg)
		}
		c.signalSub(false)
		return
	}
	c.sk.message(c, ev, msg, now, sh)
}

func (c *conn) signalSub(ok bool) {
	if c.subOK != nil {
		select {
		case c.subOK <- ok:
		default:
		}
	}
}

// writeMessage sends one text message.
func (c *conn) writeMessage(msg []byte) error { return c.writeFrame(opText, msg) }

func (c *conn) writeFrame(op byte, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return net.ErrClosed
	}
	bp := writeBufs.Get().(*[]byte)
	defer writeBufs.Put(bp)
	*bp = appendClientFrame((*bp)[:0], op, payload)
	if c.nc != nil {
		c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := c.nc.Write(*bp)
		return err
	}
	return writeFD(c.fd, *bp, 10*time.Second)
}

// writeBufs lends frame buffers to writers: writes are rare (subscriptions,
// pongs), so no connection keeps a buffer of its own.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// close closes the socket once. hard resets it (SO_LINGER 0) so that the
// benchmark's own side leaves no TIME_WAIT behind to exhaust ports.
func (c *conn) close(hard bool) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return
	}
	c.wclosed = true
	if c.nc != nil {
		if tc, ok := c.nc.(*net.TCPConn); ok && hard {
			tc.SetLinger(0)
		}
		c.nc.Close()
		return
	}
	closeFD(c.fd, hard)
}

func (c *conn) String() string { return fmt.Sprintf("conn %d (%s)", c.id, c.socketID) }
