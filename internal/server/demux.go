package server

import (
	"bytes"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/heraldhq/herald/internal/wsconn"
)

// Head buffer sizes: most upgrade requests fit the pooled buffer; one may
// grow to maxHeadBytes (cookies), beyond which net/http gets the request.
const (
	headBufBytes = 4 << 10
	maxHeadBytes = 16 << 10
)

// demux sits between the listening socket and net/http. Each accepted
// connection gets a short-lived goroutine that reads the request head
// itself: a connection whose head starts with prefix is offered to take,
// which may serve it directly (a WebSocket upgrade, answered without
// net/http's per-connection goroutine, buffers and request objects);
// everything else, and whatever take declines, goes to net/http through
// httpListener with the bytes already read replayed first.
type demux struct {
	ln      net.Listener
	prefix  []byte
	timeout time.Duration // for the whole head
	// take serves the connection whose complete head is head, followed by
	// rest, and reports whether it did; both are only valid during the
	// call. It must not block on the client.
	take func(nc net.Conn, head, rest []byte) bool
	// takeFD, if not nil, is take for a socket accepted outside the Go
	// runtime (see rawAcceptLoop); declining leaves fd the demux's.
	takeFD func(fd int, head, rest []byte) bool

	rawFile   *os.File      // rawAcceptLoop's duplicate of the listener, if any
	conns     chan accepted // to net/http
	done      chan struct{} // closed by close
	closeOnce sync.Once
	closeErr  error

	mu      sync.Mutex
	closed  bool
	reading map[net.Conn]struct{} // connections whose head is being read
	wg      sync.WaitGroup        // the accept loop and every head reader
}

type accepted struct {
	c   net.Conn
	err error
}

var headBufs = sync.Pool{New: func() any { b := make([]byte, headBufBytes); return &b }}

// newDemux starts demultiplexing ln. With takeFD, a TCP listener on Linux
// is served by rawAcceptLoop; otherwise by acceptLoop.
func newDemux(ln net.Listener, prefix string, timeout time.Duration, take func(net.Conn, []byte, []byte) bool,
	takeFD func(int, []byte, []byte) bool) *demux {
	d := &demux{
		ln:      ln,
		prefix:  []byte(prefix),
		timeout: timeout,
		take:    take,
		takeFD:  takeFD,
		conns:   make(chan accepted),
		done:    make(chan struct{}),
		reading: map[net.Conn]struct{}{},
	}
	d.wg.Add(1)
	if raw := d.rawListener(); raw != nil {
		go d.rawAcceptLoop(raw)
	} else {
		go d.acceptLoop()
	}
	return d
}

// httpListener is the listener to give net/http. Closing it closes the
// demux.
func (d *demux) httpListener() net.Listener { return (*httpListener)(d) }

// acceptLoop accepts until the listener fails. Errors go to net/http's
// Accept as they are, so that it retries temporary ones (pacing this loop,
// which waits until the error is taken) and stops on others.
func (d *demux) acceptLoop() {
	defer d.wg.Done()
	for {
		c, err := d.ln.Accept()
		if err != nil {
			select {
			case d.conns <- accepted{err: err}:
			case <-d.done:
				return
			}
			if isTemporary(err) {
				continue
			}
			return
		}
		d.startRoute(c, nil)
	}
}

// startRoute reads the rest of c's request head on a goroutine of its own;
// read holds what has been read of it already.
func (d *demux) startRoute(c net.Conn, read []byte) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		c.Close()
		return
	}
	d.reading[c] = struct{}{}
	d.wg.Add(1)
	d.mu.Unlock()
	go d.route(c, read)
}

// isTemporary is net/http's test for an Accept error worth retrying.
func isTemporary(err error) bool {
	te, ok := err.(interface{ Temporary() bool })
	return ok && te.Temporary()
}

// route reads c's request head, which starts with read, and decides who
// serves it.
func (d *demux) route(c net.Conn, read []byte) {
	defer d.wg.Done()
	bp := headBufs.Get().(*[]byte)
	defer headBufs.Put(bp)
	buf := *bp
	n, end, drop := copy(buf, read), -1, false
	c.SetReadDeadline(time.Now().Add(d.timeout))
	for first := n > 0; ; first = false {
		var m int
		var err error
		if !first { // what was read already is looked at before reading on
			m, err = c.Read(buf[n:])
		}
		n += m
		if k := min(n, len(d.prefix)); !bytes.Equal(buf[:k], d.prefix[:k]) {
			break // not ours: straight to net/http
		}
		if end = wsconn.HeadEnd(buf[:n]); end >= 0 {
			break
		}
		if err != nil {
			// Nothing, or not in time: dropped, as net/http would. A
			// truncated request goes to net/http, to be answered as usual.
			drop = n == 0 || isTimeout(err)
			break
		}
		if n == len(buf) {
			if len(buf) >= maxHeadBytes {
				break // too long for us
			}
			buf = append(buf[:n], make([]byte, maxHeadBytes-n)...)
		}
	}
	d.mu.Lock()
	delete(d.reading, c)
	closed := d.closed
	d.mu.Unlock()
	switch {
	case drop || closed:
		c.Close()
	case end >= 0 && d.take(c, buf[:end], buf[end:n]):
	default:
		d.toHTTP(c, bytes.Clone(buf[:n]))
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// toHTTP hands c to net/http, which reads prefix first.
func (d *demux) toHTTP(c net.Conn, prefix []byte) {
	c.SetReadDeadline(time.Time{})
	var pc net.Conn = c
	if len(prefix) > 0 {
		pc = &prefixConn{Conn: c, prefix: prefix}
	}
	select {
	case d.conns <- accepted{c: pc}:
	case <-d.done:
		c.Close()
	}
}

// close stops accepting, closes connections still sending their head and
// makes Accept fail.
func (d *demux) close() error {
	d.closeOnce.Do(func() {
		close(d.done)
		d.closeErr = d.ln.Close()
		if d.rawFile != nil {
			d.rawFile.Close() // ends rawAcceptLoop's wait
		}
		d.mu.Lock()
		d.closed = true
		for c := range d.reading {
			c.SetReadDeadline(time.Unix(1, 0))
		}
		d.mu.Unlock()
	})
	return d.closeErr
}

// wait returns once the accept loop and every head reader are done, so no
// connection is handed on afterwards.
func (d *demux) wait() { d.wg.Wait() }

// httpListener is the demux as net/http sees it.
type httpListener demux

func (l *httpListener) Accept() (net.Conn, error) {
	d := (*demux)(l)
	select {
	case a := <-d.conns:
		return a.c, a.err
	case <-d.done:
		return nil, net.ErrClosed
	}
}

func (l *httpListener) Close() error   { return (*demux)(l).close() }
func (l *httpListener) Addr() net.Addr { return l.ln.Addr() }

// prefixConn replays bytes already read from its connection before reading
// on.
type prefixConn struct {
	net.Conn
	mu     sync.Mutex
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		c.mu.Unlock()
		return n, nil
	}
	c.mu.Unlock()
	return c.Conn.Read(p)
}

// Unread implements wsconn.Unreader: an upgrade through net/http takes the
// bytes net/http has not read yet.
func (c *prefixConn) Unread() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.prefix
	c.prefix = nil
	return b
}

// SyscallConn lets the epoll transport take the socket over.
func (c *prefixConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("connection has no file descriptor")
	}
	return sc.SyscallConn()
}

// CloseWrite half-closes the connection, as TCP connections can.
func (c *prefixConn) CloseWrite() error {
	cw, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok {
		return errors.New("connection cannot half-close")
	}
	return cw.CloseWrite()
}
