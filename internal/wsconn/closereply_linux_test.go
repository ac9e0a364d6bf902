//go:build linux

package wsconn

import (
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// The closing handshake the server started: the client's close reply
// arrives split over two reads (so the reader carries the first part) and
// is followed by the first byte of another frame. peerClose shuts the
// connection down inside feed, which releases the reader's buffers; feed
// must stop there. It once went on with the rest of the read and
// dereferenced the released carry: a panic on the poller goroutine, which
// took the process down. Any client could do it.
func TestCloseReplyAfterServerCloseIsSafe(t *testing.T) {
	c, nc, br := serveOne(t, Config{Transport: TransportEpoll, Pollers: 1})
	c.Close(1000, "bye")
	if h, _ := readFrame(t, nc, br); h.OpCode != ws.OpClose {
		t.Fatalf("got opcode %v, want close", h.OpCode)
	}
	time.Sleep(50 * time.Millisecond) // the server has sent its close (sentClose)
	reply := clientFrame(true, opClose, closePayload(1000, ""))
	next := clientFrame(true, opText, []byte("hi"))
	if _, err := nc.Write(reply[:1]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // read separately: the reader carries it
	if _, err := nc.Write(append(reply[1:], next[0])); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the poller would have panicked by now
}

type afterCloseHandler struct {
	mu     sync.Mutex
	closed bool
	late   []string
}

func (h *afterCloseHandler) HandleMessage(b []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		h.late = append(h.late, string(b))
	}
}

func (h *afterCloseHandler) HandleClose(error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
}

// A frame behind the client's close reply, in the same read, never reaches
// the handler: the connection was shut down, and HandleClose called,
// inside feed, when the close frame answered the server's.
func TestNoMessageAfterHandleClose(t *testing.T) {
	h := &afterCloseHandler{}
	c, nc, br := serveOneWith(t, Config{Transport: TransportEpoll, Pollers: 1}, h)
	c.Close(1000, "bye")
	if hd, _ := readFrame(t, nc, br); hd.OpCode != ws.OpClose {
		t.Fatalf("got opcode %v, want close", hd.OpCode)
	}
	time.Sleep(50 * time.Millisecond)
	stream := append(clientFrame(true, opClose, closePayload(1000, "")), clientFrame(true, opText, []byte("after close"))...)
	if _, err := nc.Write(stream); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed || len(h.late) > 0 {
		t.Fatalf("closed %v; messages after HandleClose: %q", h.closed, h.late)
	}
}
