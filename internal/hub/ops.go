package hub

import (
	"context"
	"sync"
)

// opQueue runs a connection's off-loop work in the order it was queued, on
// at most one goroutine at a time. The goroutine exists only while there is
// work: an idle connection holds none.
type opQueue struct {
	mu      sync.Mutex
	pending []func(context.Context)
	running bool
}

// Do queues fn to run off the transport's loop, after everything queued
// before it for this connection. fn gets a context that ends after the
// hub's op timeout or when the hub is closed; it may block (broker round
// trips), and reports its result back to the session itself, under the
// session's own lock. Do never blocks. The hub owns the goroutine and
// Drain and Close wait for it.
func (c *Conn) Do(fn func(ctx context.Context)) {
	q := c.ops.Load()
	if q == nil {
		q = new(opQueue)
		if !c.ops.CompareAndSwap(nil, q) {
			q = c.ops.Load()
		}
	}
	q.mu.Lock()
	q.pending = append(q.pending, fn)
	if q.running {
		q.mu.Unlock()
		return
	}
	q.running = true
	q.mu.Unlock()
	c.hub.ops.Add(1)
	go c.runOps(q)
}

func (c *Conn) runOps(q *opQueue) {
	h := c.hub
	defer h.ops.Done()
	for {
		q.mu.Lock()
		if len(q.pending) == 0 {
			q.pending = nil
			q.running = false
			q.mu.Unlock()
			return
		}
		fn := q.pending[0]
		q.pending[0] = nil
		q.pending = q.pending[1:]
		q.mu.Unlock()
		ctx, cancel := context.WithTimeout(h.ctx, h.cfg.OpTimeout)
		fn(ctx)
		cancel()
	}
}

// WaitOps waits until no connection has off-loop work pending, or ctx ends.
func (h *Hub) WaitOps(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		h.ops.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
