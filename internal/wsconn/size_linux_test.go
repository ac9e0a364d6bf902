//go:build linux

package wsconn

import (
	"bytes"
	"fmt"
	"math"
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

// While a flush is under way the bytes lent to the kernel do not count
// against MaxQueueBytes, so a connection may owe twice the limit, and a
// pong and the frame a flush appends besides: all of it must fit the
// connection's 32-bit byte counts. At a 1 GiB ceiling twice the limit was
// 2^31: queued wrapped negative and the limit stopped applying.
func TestQueueLimitFitsTheCounters(t *testing.T) {
	var c pconn
	if owed := 2*int64(MaxQueueBytesLimit) + 1<<20; owed > math.MaxInt32 {
		t.Errorf("a connection may owe %d bytes, more than its int32 counts hold", owed)
	}
	if unsafe.Sizeof(c.queued) != 4 || unsafe.Sizeof(c.outBytes) != 4 {
		t.Errorf("queued and outBytes are %d and %d bytes: the bound above assumes int32", unsafe.Sizeof(c.queued), unsafe.Sizeof(c.outBytes))
	}
}
