package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/internal/http1"
	"github.com/heraldhq/herald/internal/httpapi"
)

// restPrefix starts the requests the REST fast path serves.
const restPrefix = "POST /apps/"

// restBufBytes is a fast-path connection's read buffer: a head and a small
// body fit in one read. A head that does not fit goes to net/http, which
// takes heads up to maxHTTPHeadBytes.
const restBufBytes = 4 << 10

// maxUnreadDrain is how much of a body left unread the fast path reads
// and drops to keep the connection, as net/http does (its
// maxPostHandlerReadBytes); a larger rest closes the connection.
const maxUnreadDrain = 256 << 10

// restServer serves the keep-alive connections of REST clients whose
// requests are publishes, the traffic backends send most, without
// net/http: one goroutine per connection reads each head into a buffer of
// its own (http1.Parse, a strict subset of what net/http reads), hands the
// request to the API's publish handler with a request and a response
// writer reused from one request to the next, and writes the answer in one
// write. net/http costs each request a request and response object, a
// header map, a context, a background read with its goroutine and about
// six deadline changes; here it is one read, one write and two deadlines.
//
// Anything else, a head http1.Parse declines or a request that is not a
// publish, goes to net/http with the bytes from its first one on, and
// net/http serves the connection from then on: it gets every byte at a
// request boundary that both agree on (FuzzAgainstNetHTTP), so the two can
// never frame a request differently. Refusals, limits and timeouts are
// net/http's: the header, body, write and idle timeouts of the server's
// configuration, the pending-connection slot given back once a request is
// signed, Connection: close after a refusal.
type restServer struct {
	api *httpapi.API
	log *slog.Logger

	headerTimeout, bodyTimeout, writeTimeout, idleTimeout time.Duration

	mu sync.Mutex // guards conns; set closing under it
	// closing is set once shutting down has begun. Connections read it on
	// every request, without mu, which every connection would share.
	closing atomic.Bool
	conns   map[*restConn]struct{}
	wg      sync.WaitGroup // one per connection being served

	// answered counts the requests the fast path answered, for tests.
	answered atomic.Uint64
}

// restConn is one connection the fast path serves.
type restConn struct {
	srv *restServer
	d   *demux    // for handing the connection to net/http
	hc  *httpConn // the connection and its pending slot; hc.Read is net/http's, not used here
	buf []byte
	r   int // buf[r:w] is read and not yet used
	w   int
	// idle is set from the end of one request until the next one's head
	// is complete, when shutting down closes the connection, as net/http
	// closes a connection that has not sent a whole head; guarded by mu,
	// the connection's own, which also orders its read deadlines with
	// the one shutdown sets.
	mu   sync.Mutex
	idle bool
	// cancel ends the context of the connection's requests: closeAll
	// calls it, so that a handler waiting on a stalled broker returns, as
	// net/http cancels a request's context with its connection.
	cancel context.CancelFunc

	req  *http.Request // reused, with ctx as its context
	url  url.URL
	body restBody
	rw   restWriter
	out  []byte // the answer being written

	dateSec int64
	date    []byte
}

func newRESTServer(api *httpapi.API, log *slog.Logger, header, body, write, idle time.Duration) *restServer {
	return &restServer{
		api: api, log: log,
		headerTimeout: header, bodyTimeout: body, writeTimeout: write, idleTimeout: idle,
		conns: map[*restConn]struct{}{},
	}
}

// isREST reports whether head is for the fast path to try.
func isREST(head []byte) bool { return bytes.HasPrefix(head, []byte(restPrefix)) }

// take serves hc, accepted by d, whose first bytes are read; it reports
// false, leaving hc to the caller, when the server is shutting down.
func (s *restServer) take(d *demux, hc *httpConn, read []byte) bool {
	c := &restConn{srv: s, d: d, hc: hc, buf: make([]byte, max(restBufBytes, len(read)))}
	c.w = copy(c.buf, read)
	// The context carries hc for authenticated, which gives back the
	// pending slot.
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), httpConnKey{}, hc))
	c.cancel = cancel
	c.req = (&http.Request{
		Method:     http.MethodPost,
		URL:        &c.url,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{},
		Body:       &c.body,
		RemoteAddr: hc.Conn.RemoteAddr().String(),
	}).WithContext(ctx)
	c.body.c = c
	c.rw.c = c
	c.rw.header = make(http.Header, 4)
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		cancel()
		return false
	}
	c.idle = true // until its head is complete
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go c.serve()
	return true
}

// shutdown closes the idle connections and those that finish their
// request, and waits for them until ctx ends; then closes the rest.
func (s *restServer) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	for c := range s.conns {
		c.mu.Lock()
		if c.idle {
			c.hc.Conn.SetReadDeadline(time.Unix(1, 0)) // wakes its read
		}
		c.mu.Unlock()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.closeAll()
	return ctx.Err()
}

// closeAll closes every connection at once and waits for their
// goroutines.
func (s *restServer) closeAll() {
	s.mu.Lock()
	s.closing.Store(true)
	for c := range s.conns {
		c.hc.Conn.Close()
		c.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *restServer) isClosing() bool { return s.closing.Load() }

// setIdle marks c idle or busy; false means the server is shutting down
// and c is to close.
func (c *restConn) setIdle(idle bool) bool {
	c.mu.Lock()
	c.idle = idle
	c.mu.Unlock()
	return !c.srv.closing.Load()
}

// armRead sets the read deadline d from now, unless the server is
// shutting down and c is idle: then the read is to end at once. Under
// c.mu, which shutdown takes after setting closing, so that a deadline of
// c's own never replaces the one shutdown sets to wake it.
func (c *restConn) armRead(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv.closing.Load() && c.idle {
		c.hc.Conn.SetReadDeadline(time.Unix(1, 0))
		return
	}
	setDeadline(c.hc.Conn.SetReadDeadline, d)
}

func (c *restConn) serve() {
	s := c.srv
	handed := false
	defer func() {
		// As net/http does for its handlers: a panic while serving one
		// connection ends that connection, logged, not the node.
		if v := recover(); v != nil {
			s.log.Error("panic serving a REST connection", "remote", c.hc.Conn.RemoteAddr().String(), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			handed = false
		}
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		if !handed {
			c.hc.Close()
		}
		c.cancel()
		s.wg.Done()
	}()
	var h http1.Head
	skipped := 4 // net/http skips up to 4 CR or LF bytes after a POST, none before the first request
	// The first head's header timeout has run since the demux took the
	// connection: it is not started again.
	first := true
	for {
		// headerDue is whether the header timeout runs: set on the first
		// read a head needs once its first bytes are in.
		headerDue := first
		first = false
		// Idle until the head is whole: shutting down closes c, unless
		// bytes of the next request are in already (a whole head in the
		// buffer is served; a partial one's next read ends at once).
		if !c.setIdle(true) && c.r == c.w {
			return
		}
		more := func() error {
			if !headerDue {
				c.armRead(s.headerTimeout)
				headerDue = true
			}
			return c.fill()
		}
		if c.r == c.w {
			c.r, c.w = 0, 0
			c.armRead(s.idleTimeout)
			if c.fill() != nil {
				return
			}
		}
		for skipped < 4 {
			n, wait := http1.SkipCRLF(c.buf[c.r:c.w], skipped)
			c.r += n
			skipped += n
			if !wait {
				break
			}
			if c.r == c.w {
				c.r, c.w = 0, 0
				if more() != nil {
					return
				}
			}
		}
		res := http1.Parse(c.buf[c.r:c.w], &h)
		for res == http1.Incomplete {
			if c.r > 0 && c.w == len(c.buf) { // make room: the head starts the buffer
				c.w = copy(c.buf, c.buf[c.r:c.w])
				c.r = 0
			}
			if c.w == len(c.buf) {
				res = http1.Declined // too long for us: net/http's limit applies
				break
			}
			if err := more(); err != nil {
				if c.r == c.w || isTimeout(err) {
					return // nothing or too late, as net/http drops it
				}
				res = http1.Declined // truncated: net/http answers it
				break
			}
			res = http1.Parse(c.buf[c.r:c.w], &h)
		}
		// The head is whole: from here on shutting down waits for the
		// request. One that came in as shutting down began is served, and
		// its answer says the connection closes.
		c.setIdle(false)
		if res == http1.Declined || string(h.Method) != http.MethodPost {
			handed = c.toHTTP()
			return
		}
		switch c.serveOne(&h) {
		case restClose:
			return
		case restHandOff:
			handed = c.toHTTP()
			return
		}
		skipped = 0
	}
}

// What serveOne made of a request.
const (
	restKeep    = iota // answered; the connection stays for the next
	restClose          // answered, or failed; the connection closes
	restHandOff        // not a publish: for net/http, untouched
)

// fill reads what comes next into the buffer.
func (c *restConn) fill() error {
	n, err := c.hc.Conn.Read(c.buf[c.w:])
	c.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// toHTTP hands the connection to net/http from the head at c.r on.
func (c *restConn) toHTTP() bool {
	c.hc.Conn.SetDeadline(time.Time{})
	c.hc.mu.Lock()
	c.hc.prefix = bytes.Clone(c.buf[c.r:c.w])
	c.hc.mu.Unlock()
	return c.d.handHTTP(c.hc)
}

// requestTarget returns the request target of head, parsed as h, and sets
// u to its URL as net/http's url.ParseRequestURI would. The target is the
// path, and '?' and the query when there is a '?' at all:
// "/apps/1/events?" has an empty query, which net/http keeps as
// ForceQuery.
func requestTarget(head []byte, h *http1.Head, u *url.URL) string {
	n := len(h.Path)
	if h.Query != nil {
		n += 1 + len(h.Query)
	}
	target := string(head[len(h.Method)+1 : len(h.Method)+1+n])
	*u = url.URL{Path: target[:len(h.Path)]}
	if h.Query != nil {
		u.RawQuery = target[len(h.Path)+1:]
		u.ForceQuery = len(h.Query) == 0
	}
	return target
}

// serveOne serves the request whose head h is at c.r.
func (c *restConn) serveOne(h *http1.Head) int {
	s := c.srv
	nc := c.hc.Conn
	target := requestTarget(c.buf[c.r:c.r+h.Len], h, &c.url)
	req := c.req
	req.ContentLength = h.ContentLength
	req.Close = h.Close
	req.RequestURI = target
	if string(h.Host) != req.Host {
		req.Host = string(h.Host)
	}
	c.r += h.Len
	c.body.left = h.ContentLength
	if s.writeTimeout > 0 {
		d := s.writeTimeout
		if h.ContentLength > 0 && int64(c.w-c.r) < h.ContentLength {
			d += s.bodyTimeout // see withBodyTimeout
		}
		nc.SetWriteDeadline(time.Now().Add(d))
	}
	if h.ContentLength > 0 && int64(c.w-c.r) < h.ContentLength {
		setDeadline(nc.SetReadDeadline, s.bodyTimeout)
	}
	w := &c.rw
	w.reset()
	if !s.api.ServePublish(w, req) {
		// Not a publish: nothing was read or written. net/http serves it.
		c.r -= h.Len
		c.body.left = 0
		return restHandOff
	}
	closing := h.Close || w.header.Get("Connection") == "close" || s.isClosing()
	if closing || c.hc.pending.Load() {
		// A refusal, or a request that authenticated nothing: answered
		// and closed, as net/http's idle hook closes a pending one.
		closing = true
		c.hc.release()
	}
	c.writeAnswer(closing)
	s.answered.Add(1)
	if _, err := nc.Write(c.out); err != nil {
		return restClose
	}
	if closing {
		c.closeAfterAnswer()
		return restClose
	}
	if c.body.left > 0 && !c.drainBody() {
		return restClose
	}
	return restKeep
}

// drainBody reads and drops what is left of a body the handler did not
// read, up to maxUnreadDrain.
func (c *restConn) drainBody() bool {
	if c.body.left > maxUnreadDrain {
		return false
	}
	setDeadline(c.hc.Conn.SetReadDeadline, c.srv.bodyTimeout)
	_, err := io.Copy(io.Discard, &c.body)
	return err == nil && c.body.left == 0
}

// closeAfterAnswer ends a connection whose answer has gone: it stops
// sending, and reads what the client still sends (the rest of a refused
// body) for a moment before closing, so that the client reads the answer
// rather than a reset.
func (c *restConn) closeAfterAnswer() {
	nc := c.hc.Conn
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	nc.SetReadDeadline(time.Now().Add(rstAvoidance))
	var scratch [512]byte
	for {
		if _, err := nc.Read(scratch[:]); err != nil {
			return
		}
	}
}

// rstAvoidance is net/http's wait between half-closing a connection and
// closing it.
const rstAvoidance = 500 * time.Millisecond

func setDeadline(set func(time.Time) error, d time.Duration) {
	if d > 0 {
		set(time.Now().Add(d))
	} else {
		set(time.Time{})
	}
}

// writeAnswer puts the answer rw holds into c.out: status line, the
// handler's headers in name order, Date and Content-Length, then the body.
func (c *restConn) writeAnswer(closing bool) {
	w := &c.rw
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	b := append(c.out[:0], "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\n"...)
	if closing {
		w.header["Connection"] = closeValue
	}
	var keys [8]string
	names := keys[:0]
	for k := range w.header {
		names = append(names, k)
	}
	for i := 1; i < len(names); i++ { // a few names: insertion sort, no allocation
		for j := i; j > 0 && names[j] < names[j-1]; j-- {
			names[j], names[j-1] = names[j-1], names[j]
		}
	}
	for _, k := range names {
		if k == "Content-Length" || k == "Date" {
			continue
		}
		for _, v := range w.header[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "Date: "...)
	b = append(b, c.httpDate()...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(w.body)), 10)
	b = append(b, "\r\n\r\n"...)
	c.out = append(b, w.body...)
}

var closeValue = []string{"close"}

// httpDate is the Date header's value, formatted once a second.
func (c *restConn) httpDate() []byte {
	now := time.Now()
	if sec := now.Unix(); sec != c.dateSec || c.date == nil {
		c.dateSec = sec
		c.date = now.UTC().AppendFormat(c.date[:0], http.TimeFormat)
	}
	return c.date
}

// restBody is a request's body: what the buffer holds of it, then the
// connection, up to its declared length.
type restBody struct {
	c    *restConn
	left int64
}

func (b *restBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	c := b.c
	if c.r < c.w {
		n := copy(p, c.buf[c.r:c.w])
		c.r += n
		b.left -= int64(n)
		return n, nil
	}
	n, err := c.hc.Conn.Read(p)
	b.left -= int64(n)
	if n == 0 && err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if n > 0 {
		err = nil
	}
	return n, err
}

func (b *restBody) Close() error { return nil }

// restWriter is the http.ResponseWriter of the fast path: it keeps the
// answer for writeAnswer.
type restWriter struct {
	c      *restConn
	header http.Header
	status int
	body   []byte
}

func (w *restWriter) reset() {
	clear(w.header)
	w.status = 0
	w.body = w.body[:0]
}

func (w *restWriter) Header() http.Header { return w.header }

func (w *restWriter) WriteHeader(status int) {
	if w.status == 0 && status >= 200 {
		w.status = status
	}
}

func (w *restWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// SetReadDeadline and SetWriteDeadline are what http.ResponseController
// finds on net/http's own writer.
func (w *restWriter) SetReadDeadline(t time.Time) error  { return w.c.hc.Conn.SetReadDeadline(t) }
func (w *restWriter) SetWriteDeadline(t time.Time) error { return w.c.hc.Conn.SetWriteDeadline(t) }
