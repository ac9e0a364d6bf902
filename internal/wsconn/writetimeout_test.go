package wsconn

import (
	"testing"
	"time"
)

// A client whose socket stays full for the write timeout is dropped, even
// when nothing more is sent to it: what is queued for it, and the payloads
// it shares with other connections, are not held for as long as it keeps
// the connection open otherwise.
func TestFullSocketDroppedAfterWriteTimeout(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr, func(t *testing.T) {
			const timeout = 300 * time.Millisecond
			h := newRecordHandler()
			c, _, _ := serveOneWith(t, Config{Transport: tr, Pollers: 1, MaxQueueBytes: 16 << 20, WriteTimeout: timeout}, h)
			// More than the kernel's buffers take, then nothing more.
			for i := 0; i < 4000; i++ {
				if c.Send(numberedPayload(i, 4<<10)) != nil {
					break
				}
			}
			select {
			case <-h.closed:
			case <-time.After(10 * timeout):
				t.Fatalf("a client that has not read for %v is still connected", 10*timeout)
			}
		})
	}
}
