package http1

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// served is what a server made of one request.
type served struct {
	Method, Target, Host string
	ContentLength        int64
	Close                bool
	Body                 string
	Truncated            bool // the body ended before its declared length
}

// netHTTP is an http.Server serving byte strings as connections: what it
// serves of them is the reference the fast path is held to.
type netHTTP struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	srv   *http.Server
}

type servedKey struct{}

func startNetHTTP(tb testing.TB) *netHTTP {
	o := &netHTTP{conns: make(chan net.Conn), done: make(chan struct{})}
	o.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			c := r.Context().Value(servedKey{}).(*byteConn)
			c.served = append(c.served, served{
				Method: r.Method, Target: r.RequestURI, Host: r.Host,
				ContentLength: r.ContentLength, Close: r.Close,
				Body: string(body), Truncated: err != nil,
			})
		}),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, servedKey{}, c)
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		o.srv.Serve(o)
	}()
	tb.Cleanup(func() {
		o.srv.Close()
		<-done
	})
	return o
}

// serve has net/http read b as one connection and returns the requests it
// served.
func (o *netHTTP) serve(tb testing.TB, b []byte) []served {
	c := &byteConn{data: b, closed: make(chan struct{})}
	o.conns <- c
	select {
	case <-c.closed:
	case <-time.After(10 * time.Second):
		tb.Fatalf("net/http did not close the connection of %q", b)
	}
	return c.served
}

func (o *netHTTP) Accept() (net.Conn, error) {
	select {
	case c := <-o.conns:
		return c, nil
	case <-o.done:
		return nil, net.ErrClosed
	}
}

func (o *netHTTP) Close() error   { o.once.Do(func() { close(o.done) }); return nil }
func (o *netHTTP) Addr() net.Addr { return fakeAddr{} }

// byteConn is a connection that reads data, then EOF.
type byteConn struct {
	mu     sync.Mutex
	data   []byte
	served []served // written by the handler, read once closed
	once   sync.Once
	closed chan struct{}
}

func (c *byteConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.data)
	c.data = c.data[n:]
	return n, nil
}

func (c *byteConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *byteConn) Close() error                     { c.once.Do(func() { close(c.closed) }); return nil }
func (c *byteConn) LocalAddr() net.Addr              { return fakeAddr{} }
func (c *byteConn) RemoteAddr() net.Addr             { return fakeAddr{} }
func (c *byteConn) SetDeadline(time.Time) error      { return nil }
func (c *byteConn) SetReadDeadline(time.Time) error  { return nil }
func (c *byteConn) SetWriteDeadline(time.Time) error { return nil }

type fakeAddr struct{}

func (fakeAddr) Network() string { return "tcp" }
func (fakeAddr) String() string  { return "127.0.0.1:1" }

// fastPath reads b as the REST fast path does, serving every POST it
// accepts: the requests, and the offset at which the rest goes to
// net/http (len(b) when nothing is left, -1 when the connection closes).
func fastPath(b []byte) ([]served, int) {
	var out []served
	off, skipped := 0, 4
	for {
		n, _ := SkipCRLF(b[off:], skipped)
		off += n
		skipped += n
		var h Head
		if Parse(b[off:], &h) != Complete || string(h.Method) != "POST" {
			return out, off
		}
		s := served{
			Method: "POST", Host: string(h.Host), ContentLength: h.ContentLength, Close: h.Close,
			Target: string(h.Path),
		}
		if h.Query != nil {
			s.Target += "?" + string(h.Query)
		}
		off += h.Len
		end := off + int(min(h.ContentLength, int64(len(b)-off)))
		s.Body, s.Truncated = string(b[off:end]), int64(end-off) < h.ContentLength
		out = append(out, s)
		off = end
		if s.Truncated || h.Close {
			return out, -1
		}
		skipped = 0
	}
}

// checkAgainstNetHTTP holds the fast path to net/http on b: the requests
// it serves are the ones net/http serves first, the same in every field,
// and what it hands to net/http from there on (a fresh net/http
// connection) is served as net/http would have served it on the same
// connection. A disagreement on where one request ends and the next
// begins fails here.
func checkAgainstNetHTTP(t *testing.T, o *netHTTP, b []byte) {
	all := o.serve(t, b)
	fast, rest := fastPath(b)
	var after []served
	if rest >= 0 && rest < len(b) {
		after = o.serve(t, b[rest:])
	}
	want := fmt.Sprintf("%+v", all)
	got := fmt.Sprintf("%+v", slices.Concat(fast, after))
	if got != want {
		t.Fatalf("on %q\nnet/http serves  %s\nfast path then net/http %s (from offset %d)", b, want, got, rest)
	}
}

var seeds = []string{
	publish + `{"name":"x"}`,
	publish + `{"name":"x"}` + publish + `{"name":"y"}`,
	publish + `{"name":"x"}` + "\r\n" + publish + `{"name":"y"}`,
	publish + `{"name":"x"}` + "\r\n\r\n\r\n" + publish + `{"name":"y"}`,
	publish + `{"name":"x"}` + "GET /apps/1/channels HTTP/1.1\r\nHost: h\r\n\r\n",
	publish + `{"name"`,
	"POST /apps/1/events HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"POST /apps/1/events HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + publish + `{"name":"x"}`,
	"POST /apps/1/events HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab" + publish,
	"POST /apps/1/events HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nab",
	"POST /apps/1/events?a=%zz#f HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
	"POST /apps/1/events HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n\n\nPOST /x HTTP/1.1\r\nHost: h\r\n\r\n",
	"POST /apps/1/events HTTP/1.1\r\nHost: h\r\nContent-Length: 01\r\n\r\nx",
	"POST /apps/1/events HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy",
	"POST /apps/1/events HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n1\r\nx\r\n0\r\n\r\n",
	"POST /apps/1/events HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 1\r\n\r\nx",
}

func TestAgainstNetHTTP(t *testing.T) {
	o := startNetHTTP(t)
	for _, s := range seeds {
		checkAgainstNetHTTP(t, o, []byte(s))
	}
	// Every cut of a pipelined pair: a truncated head or body at each byte.
	pair := []byte(seeds[2])
	for n := range len(pair) {
		checkAgainstNetHTTP(t, o, pair[:n])
	}
	// Every byte of a publish head replaced by each of the bytes that
	// matter to framing.
	head := []byte(seeds[1])
	for i := range len(publish) {
		for _, c := range []byte{' ', '\t', '\r', '\n', ':', '\x00', 0x7f, 0x80, 'a', '0', ',', '?', '%', '#'} {
			b := bytes.Clone(head)
			b[i] = c
			checkAgainstNetHTTP(t, o, b)
		}
	}
}

// FuzzAgainstNetHTTP is the differential test of the fast path's framing
// against net/http's (see checkAgainstNetHTTP).
func FuzzAgainstNetHTTP(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	o := startNetHTTP(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkAgainstNetHTTP(t, o, b)
	})
}
