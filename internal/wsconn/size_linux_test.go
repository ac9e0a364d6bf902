//go:build linux

package wsconn

import (
	"bytes"
	"fmt"
	"testing"
	"time"
	"unsafe"

	"github.com/gobwas/ws"
)

// An idle connection's memory is mostly its pconn: a field added carelessly
// moves it to a larger size class, for every connection.
func TestPconnSize(t *testing.T) {
	if n := unsafe.Sizeof(pconn{}); n > 160 {
		t.Errorf("pconn is %d bytes, want at most 160", n)
	}
}

// An idle connection keeps as few frame arrays as it can: none once its
// handshake is out, and one, not a queue's and a write list's, once it has
// been sent a frame.
func TestIdleConnFrameArrays(t *testing.T) {
	c, nc, br := serveOne(t, Config{Transport: TransportEpoll, Pollers: 1, MaxQueueBytes: 1 << 20, WriteTimeout: 5 * time.Second})
	pc := c.(*pconn)
	arrays := func() int {
		pc.mu.Lock()
		defer pc.mu.Unlock()
		n := 0
		if cap(pc.queue) > 0 {
			n++
		}
		if cap(pc.out) > 0 {
			n++
		}
		return n
	}
	if n := arrays(); n != 0 {
		t.Fatalf("after the handshake the connection holds %d frame arrays, want 0", n)
	}
	for i := range 3 {
		if err := c.Send(numberedPayload(i, 64)); err != nil {
			t.Fatal(err)
		}
		if h, p := readFrame(t, nc, br); h.OpCode != ws.OpText || !bytes.HasPrefix(p, fmt.Appendf(nil, "%08d", i)) {
			t.Fatalf("frame %d: opcode %v, payload %.8q", i, h.OpCode, p)
		}
		// The loop locks the connection once more after its write.
		time.Sleep(50 * time.Millisecond)
		if n, want := arrays(), min(i+1, 2); n != want {
			t.Fatalf("after %d frames the connection holds %d frame arrays, want %d", i+1, n, want)
		}
	}
}
