package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
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
// itself: a connection whose head starts with one of prefixes is offered to take,
// which may serve it directly (a WebSocket upgrade, answered without
// net/http's per-connection goroutine, buffers and request objects);
// everything else, and whatever take declines, goes to net/http through
// httpListener with the bytes already read replayed first.
//
// Every connection accepted is pending until it is a WebSocket connection
// or has sent a correctly signed REST request; at most maxPending are
// pending at once, and a connection accepted over that is closed at once,
// so that clients who never get that far cannot take the file descriptors
// that established ones need.
type demux struct {
	ln       net.Listener
	prefixes [][]byte
	timeout  time.Duration // for the whole head
	pending  pendingLimit
	// take serves the connection whose complete head is head, followed by
	// rest, and reports whether it did; both are only valid during the
	// call. It must not block on the client.
	take func(nc net.Conn, head, rest []byte) bool
	// takeFD, if not nil, is take for a socket accepted outside the Go
	// runtime (see rawAcceptLoop); declining leaves fd the demux's.
	takeFD func(fd int, head, rest []byte) bool

	// rest, if not nil, serves the connections whose first request is a
	// POST under /apps/ (see restServer).
	rest *restServer

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

// demuxConfig configures a demux.
type demuxConfig struct {
	// prefix starts the heads offered to take; prefixes are more of them
	// (one per upgrade route).
	prefix   string
	prefixes []string
	// timeout bounds the time to read a head offered to take.
	timeout time.Duration
	take    func(nc net.Conn, head, rest []byte) bool
	takeFD  func(fd int, head, rest []byte) bool // may be nil
	rest    *restServer                          // may be nil
	// maxPending bounds the pending connections; 0 means no bound.
	maxPending int
	// log receives the reports of connections closed over maxPending.
	log *slog.Logger
}

// newDemux starts demultiplexing ln with no bound on pending connections.
func newDemux(ln net.Listener, prefix string, timeout time.Duration, take func(net.Conn, []byte, []byte) bool,
	takeFD func(int, []byte, []byte) bool) *demux {
	return newDemuxWith(ln, demuxConfig{prefix: prefix, timeout: timeout, take: take, takeFD: takeFD})
}

func headPrefixes(cfg demuxConfig) [][]byte {
	var out [][]byte
	if cfg.prefix != "" {
		out = append(out, []byte(cfg.prefix))
	}
	for _, p := range cfg.prefixes {
		out = append(out, []byte(p))
	}
	return out
}

// mayBeOurs reports whether head, the start of a request head, starts or
// may yet start with one of the prefixes offered to take.
func (d *demux) mayBeOurs(head []byte) bool {
	for _, p := range d.prefixes {
		if k := min(len(head), len(p)); bytes.Equal(head[:k], p[:k]) {
			return true
		}
	}
	return false
}

// ours reports whether head starts with one of the prefixes.
func (d *demux) ours(head []byte) bool {
	for _, p := range d.prefixes {
		if bytes.HasPrefix(head, p) {
			return true
		}
	}
	return false
}

// newDemuxWith starts demultiplexing ln. With takeFD, a TCP listener on
// Linux is served by rawAcceptLoop; otherwise by acceptLoop.
func newDemuxWith(ln net.Listener, cfg demuxConfig) *demux {
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	d := &demux{
		ln:       ln,
		prefixes: headPrefixes(cfg),
		timeout:  cfg.timeout,
		pending:  pendingLimit{max: int64(cfg.maxPending), log: cfg.log},
		take:     cfg.take,
		takeFD:   cfg.takeFD,
		rest:     cfg.rest,
		conns:    make(chan accepted),
		done:     make(chan struct{}),
		reading:  map[net.Conn]struct{}{},
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
		if !d.pending.acquire() {
			c.Close()
			continue
		}
		d.startRoute(c, nil)
	}
}

// startRoute reads the rest of c's request head on a goroutine of its own;
// read holds what has been read of it already. c holds a pending slot,
// which route passes on or gives back.
func (d *demux) startRoute(c net.Conn, read []byte) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		c.Close()
		d.pending.release()
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
	n, end, drop, rest := copy(buf, read), -1, false, false
	c.SetReadDeadline(time.Now().Add(d.timeout))
	for first := n > 0; ; first = false {
		var m int
		var err error
		if !first { // what was read already is looked at before reading on
			m, err = c.Read(buf[n:])
		}
		n += m
		if d.rest != nil && isREST(buf[:n]) {
			rest = true // the fast path reads the rest of the head
			break
		}
		if !d.mayBeOurs(buf[:n]) && !(d.rest != nil && mayStart(buf[:n], restPrefix)) {
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
		d.pending.release()
	case rest:
		hc := newHTTPConn(c, &d.pending)
		if !d.rest.take(d, hc, buf[:n]) {
			hc.prefix = bytes.Clone(buf[:n])
			if !d.handHTTP(hc) {
				hc.Close()
			}
		}
	case end >= 0 && d.take(c, buf[:end], buf[end:n]):
		// A WebSocket connection now, or refused and closed.
		d.pending.release()
	default:
		d.toHTTP(c, bytes.Clone(buf[:n]))
	}
}

// mayStart reports whether b, the start of a head, may yet start with
// prefix.
func mayStart(b []byte, prefix string) bool {
	k := min(len(b), len(prefix))
	return string(b[:k]) == prefix[:k]
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// toHTTP hands c to net/http, which reads prefix first. The pending slot
// goes with it: net/http's connection gives it back (see httpConnState).
func (d *demux) toHTTP(c net.Conn, prefix []byte) {
	c.SetReadDeadline(time.Time{})
	hc := newHTTPConn(c, &d.pending)
	hc.prefix = prefix
	if !d.handHTTP(hc) {
		hc.Close()
	}
}

// newHTTPConn makes c, which holds a pending slot of limit, an httpConn.
func newHTTPConn(c net.Conn, limit *pendingLimit) *httpConn {
	hc := &httpConn{Conn: c, limit: limit}
	hc.pending.Store(true)
	return hc
}

// handHTTP gives hc to net/http; false means the demux is closed, and hc
// still the caller's.
func (d *demux) handHTTP(hc *httpConn) bool {
	select {
	case d.conns <- accepted{c: hc}:
		return true
	case <-d.done:
		return false
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

// httpConn is a connection as net/http serves it. It replays the bytes the
// demux read before reading on, holds the connection's pending slot until
// the connection is a WebSocket or has sent a signed REST request, and
// checks the framing of every request head net/http reads from it.
type httpConn struct {
	net.Conn
	limit   *pendingLimit
	pending atomic.Bool // holds a slot of limit
	// stopped is set once the connection has been hijacked: what it
	// carries from then on is not HTTP.
	stopped atomic.Bool
	// lost is set once framing cannot follow the requests any further.
	lost atomic.Bool

	mu     sync.Mutex // for prefix: Unread may come from another goroutine
	prefix []byte

	// Only Read touches these; net/http never reads concurrently.
	framing framing
	refused bool // a head failed the framing check: refusedHead, then errors
}

// refusedHead is what net/http reads instead of the end of a request head
// that declares both Content-Length and Transfer-Encoding: a header line
// without a colon, which makes it answer 400 Bad Request and close the
// connection. Data rather than a read error, because a read error would
// also cancel a request still being served on the connection, one that
// came before the refused head.
var refusedHead = []byte("content-length-with-transfer-encoding\r\n\r\n")

// errRequestFraming is what a connection reads once refusedHead has been
// read: nothing that came after the refused head is ever handed on.
var errRequestFraming = errors.New("request declares both Content-Length and Transfer-Encoding")

func (c *httpConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		c.mu.Unlock()
		if c.refused {
			return n, nil
		}
		return c.check(p, n, nil)
	}
	c.mu.Unlock()
	if c.refused {
		return 0, errRequestFraming
	}
	n, err := c.Conn.Read(p)
	return c.check(p, n, err)
}

// check runs framing over p[:n], just read, and returns what of it Read
// may hand on.
func (c *httpConn) check(p []byte, n int, err error) (int, error) {
	if n == 0 || c.stopped.Load() || c.framing.lost() {
		return n, err
	}
	k, bad := c.framing.scan(p[:n])
	if bad {
		c.refused = true
		c.mu.Lock()
		c.prefix = bytes.Clone(refusedHead) // in place of what is left
		c.mu.Unlock()
		if k == 0 {
			return c.Read(p)
		}
		return k, nil
	}
	if c.framing.lost() {
		c.lost.Store(true)
	}
	return n, err
}

// Close closes the connection and gives back its pending slot, if it still
// holds one.
func (c *httpConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// release gives back the connection's pending slot, if it still holds one:
// it is a WebSocket connection, has sent a correctly signed request or is
// closed.
func (c *httpConn) release() {
	if c.pending.Load() && c.pending.CompareAndSwap(true, false) {
		c.limit.release()
	}
}

// httpConnState follows a connection served by net/http (an
// http.Server.ConnState hook). A hijacked connection is a WebSocket:
// neither pending nor HTTP any more. One that goes idle still pending has
// answered a request without authenticating, and one whose framing was
// lost cannot be trusted with another request: both are closed rather
// than kept alive.
func httpConnState(nc net.Conn, state http.ConnState) {
	c, ok := nc.(*httpConn)
	if !ok {
		return
	}
	switch state {
	case http.StateHijacked:
		c.stopped.Store(true)
		c.release()
	case http.StateIdle:
		if c.pending.Load() || c.lost.Load() {
			c.Close()
		}
	case http.StateClosed:
		c.release()
	}
}

type httpConnKey struct{}

// withHTTPConn puts c, if it is an httpConn, in ctx (an
// http.Server.ConnContext hook).
func withHTTPConn(ctx context.Context, c net.Conn) context.Context {
	if hc, ok := c.(*httpConn); ok {
		return context.WithValue(ctx, httpConnKey{}, hc)
	}
	return ctx
}

// httpConnOf is the connection r came on, if withHTTPConn saw it.
func httpConnOf(r *http.Request) *httpConn {
	c, _ := r.Context().Value(httpConnKey{}).(*httpConn)
	return c
}

// Unread implements wsconn.Unreader: an upgrade through net/http takes the
// bytes net/http has not read yet.
func (c *httpConn) Unread() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.prefix
	c.prefix = nil
	return b
}

// SyscallConn lets the epoll transport take the socket over.
func (c *httpConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("connection has no file descriptor")
	}
	return sc.SyscallConn()
}

// CloseWrite half-closes the connection, as TCP connections can.
func (c *httpConn) CloseWrite() error {
	cw, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok {
		return errors.New("connection cannot half-close")
	}
	return cw.CloseWrite()
}
