package wsconn

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// Pongs count against a connection's queue like everything else it is
// sent, and once written they are no longer charged to it: after a client
// has had every ping answered, its connection owes nothing. Were a written
// pong not charged when queued but paid back when written, every ping
// would lower the count below what is queued, and a client could ping its
// way past MaxQueueBytes, then stop reading and have Herald queue for it
// without bound.
func TestPongsLeaveTheQueueCountAsItWas(t *testing.T) {
	const limit, pings = 64 << 10, 2000
	c, nc, br := serveOne(t, Config{Transport: TransportEpoll, Pollers: 1, MaxQueueBytes: limit, WriteTimeout: 5 * time.Second})
	pc := c.(*pconn)
	payload := bytes.Repeat([]byte("p"), 125)
	for i := range pings {
		// One at a time, each answered before the next, so that every
		// pong is written on its own.
		copy(payload, fmt.Sprintf("%08d", i))
		nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := nc.Write(clientFrame(true, opPing, payload)); err != nil {
			t.Fatal(err)
		}
		h, p := readFrame(t, nc, br)
		if h.OpCode != ws.OpPong || !bytes.Equal(p, payload) {
			t.Fatalf("ping %d answered by op %d %q", i, h.OpCode, p)
		}
	}
	// The loop settles the count just after the write that the client
	// saw; give it a moment.
	var queued int32
	for deadline := time.Now().Add(time.Second); ; time.Sleep(time.Millisecond) {
		pc.mu.Lock()
		queued = pc.queued
		pc.mu.Unlock()
		if queued == 0 || time.Now().After(deadline) {
			break
		}
	}
	if queued != 0 {
		t.Fatalf("%d pings answered, nothing queued: the connection is charged %d bytes, want 0", pings, queued)
	}
}
