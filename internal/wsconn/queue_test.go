package wsconn

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// transports lists the transports this platform runs.
func transports() []string {
	if defaultTransport == TransportEpoll {
		return []string{TransportEpoll, TransportGoroutine}
	}
	return []string{TransportGoroutine}
}

type nopHandler struct{}

func (nopHandler) HandleMessage([]byte) {}
func (nopHandler) HandleClose(error)    {}

// serveOne starts a transport behind an HTTP server, dials it and returns
// the server's side of the one connection and the client's.
func serveOne(t *testing.T, cfg Config) (Conn, net.Conn, *bufio.Reader) {
	t.Helper()
	return serveOneWith(t, cfg, nopHandler{})
}

// serveOneWith is serveOne with h handling the connection.
func serveOneWith(t *testing.T, cfg Config, h Handler) (Conn, net.Conn, *bufio.Reader) {
	t.Helper()
	up, err := NewUpgrader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r)
		if err != nil {
			t.Error(err)
			return
		}
		c.Start(h)
		conns <- c
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, br, _, err := ws.Dial(ctx, "ws://"+strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if br == nil {
		br = bufio.NewReader(nc)
	}
	t.Cleanup(func() {
		nc.Close()
		srv.Close()
		up.Close()
	})
	select {
	case c := <-conns:
		return c, nc, br
	case <-time.After(5 * time.Second):
		t.Fatal("no connection")
		return nil, nil, nil
	}
}

// numberedPayload is a message payload of size bytes that starts with seq.
func numberedPayload(seq, size int) []byte {
	p := bytes.Repeat([]byte{'x'}, size)
	copy(p, fmt.Sprintf("%08d", seq))
	return p
}

// readFrame reads one server frame.
func readFrame(t *testing.T, nc net.Conn, br *bufio.Reader) (ws.Header, []byte) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, err := ws.ReadHeader(br)
	if err != nil {
		t.Fatalf("read header: %v", err)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(br, p); err != nil {
		t.Fatalf("read payload: %v", err)
	}
	return h, p
}

// A frame the kernel has taken no longer counts against the queue limit,
// even if the writing goroutine has not yet come back from the write. That
// goroutine is routinely descheduled right there (the write wakes the
// reader), and a client that had already read everything was then cut off
// as slow because its own delivered bytes still counted. afterWrite holds
// the writer at exactly that point.
func TestQueueLimitSparesBytesBeingWritten(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr, func(t *testing.T) {
			wrote := make(chan struct{})
			release := make(chan struct{})
			var once sync.Once
			defer once.Do(func() { close(release) })
			var first sync.Once
			var armed atomic.Bool // not for the handshake's own writes
			cfg := Config{Transport: tr, Pollers: 1, MaxQueueBytes: 8 << 10}
			cfg.afterWrite = func() {
				if !armed.Load() {
					return
				}
				stalled := false
				first.Do(func() { stalled = true })
				if stalled {
					close(wrote)
					<-release
				}
			}
			c, nc, br := serveOne(t, cfg)
			armed.Store(true)

			a := numberedPayload(0, 5<<10)
			if err := c.Send(a); err != nil {
				t.Fatalf("send a: %v", err)
			}
			<-wrote // the writer is stalled just after writing a
			if _, p := readFrame(t, nc, br); !bytes.HasPrefix(p, []byte("00000000")) {
				t.Fatalf("got %.8q, want frame 0", p)
			}
			// The client holds a, so only b is owed to it: 5 KB of 8 KB.
			if err := c.Send(numberedPayload(1, 5<<10)); err != nil {
				t.Fatalf("send b after the client read a: %v", err)
			}
			once.Do(func() { close(release) })
			if _, p := readFrame(t, nc, br); !bytes.HasPrefix(p, []byte("00000001")) {
				t.Fatalf("got %.8q, want frame 1", p)
			}
		})
	}
}
