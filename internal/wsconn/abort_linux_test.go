package wsconn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// A client that does not read fills its queue; Abort then drops every frame
// it has not begun to receive and closes with the given code after the
// frames it has, which arrive whole and in order.
func TestAbortDropsUnsentFrames(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr, func(t *testing.T) {
			const limit, size = 64 << 10, 4 << 10
			c, nc, br := serveOne(t, Config{Transport: tr, Pollers: 1, MaxQueueBytes: limit, WriteTimeout: 5 * time.Second})
			accepted, frames := 0, 0
			for {
				f := numberedPayload(frames, size)
				err := c.Send(f)
				if errors.Is(err, ErrQueueFull) {
					pc, ok := c.(*pconn)
					if !ok {
						break
					}
					// Once the loop has taken the queue, whatever it could
					// not write is in out. If the frame is refused even
					// then, the kernel is full and out holds nearly the
					// limit: Abort must drop frames from there too.
					waitTaken(t, pc)
					if err = c.Send(f); errors.Is(err, ErrQueueFull) {
						break
					}
				}
				if err != nil {
					t.Fatalf("send %d: %v", frames, err)
				}
				accepted += len(f)
				frames++
				if accepted > 1<<30 {
					t.Fatal("1 GB accepted for a client that does not read")
				}
			}
			c.Abort(4100, "slow")
			if err := c.Send(numberedPayload(frames, size)); !errors.Is(err, ErrClosed) {
				t.Fatalf("send after abort: %v, want ErrClosed", err)
			}

			received := 0
			for seq := 0; ; seq++ {
				h, p := readFrame(t, nc, br)
				if h.OpCode == ws.OpClose {
					if len(p) < 2 || binary.BigEndian.Uint16(p) != 4100 {
						t.Fatalf("close payload %q, want code 4100", p)
					}
					break
				}
				if h.OpCode != ws.OpText || !bytes.HasPrefix(p, fmt.Appendf(nil, "%08d", seq)) {
					t.Fatalf("frame %d: opcode %v, payload %.8q", seq, h.OpCode, p)
				}
				received += len(numberedPayload(seq, size))
			}
			// At the overflow, nearly limit bytes were charged: frames the
			// kernel had not taken, all but at most one partly written frame
			// of them not begun. Most of them must be gone.
			if dropped := accepted - received; dropped < limit/2 {
				t.Fatalf("accepted %d bytes, client received %d: only %d dropped, want at least %d",
					accepted, received, dropped, limit/2)
			}
		})
	}
}

// waitTaken waits until c's loop has taken every queued frame.
func waitTaken(t *testing.T, c *pconn) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		n := len(c.queue)
		c.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d frames still queued after 5s", n)
		}
		time.Sleep(time.Millisecond)
	}
}
