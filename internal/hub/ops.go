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

// MaxPendingOps bounds the work TryDo lets one connection queue: what a
// client can make the node hold by asking faster than the broker answers.
const MaxPendingOps = 256

// TryDo is Do for work the client asked for and may be refused (a
// subscription, a client event): it queues nothing and reports false when
// the connection already has MaxPendingOps pieces of work waiting.
func (c *Conn) TryDo(fn func(ctx context.Context)) bool {
	return c.do(fn, MaxPendingOps)
}

// Do queues fn to run off the transport's loop, after everything queued
// before it for this connection. It always queues: it is for work that
// undoes what was done (a presence leave), which is bounded by the work
// TryDo accepted. fn gets a context that ends after the
// hub's op timeout or when the hub is closed; it may block (broker round
// trips), and reports its result back to the session itself, under the
// session's own lock. Do never blocks. The hub owns the goroutine and
// Drain and Close wait for it.
func (c *Conn) Do(fn func(ctx context.Context)) { c.do(fn, 0) }

// do queues fn unless limit > 0 and that many are waiting.
func (c *Conn) do(fn func(ctx context.Context), limit int) bool {
	q := c.ops.Load()
	if q == nil {
		q = new(opQueue)
		if !c.ops.CompareAndSwap(nil, q) {
			q = c.ops.Load()
		}
	}
	q.mu.Lock()
	if limit > 0 && len(q.pending) >= limit {
		q.mu.Unlock()
		return false
	}
	h := c.app.hub
	// Close waits for the goroutines started here; none may start once it
	// has begun (a WaitGroup must not grow from zero while it is waited
	// for). Work queued after that is dropped: the broker is closing too.
	h.opsMu.RLock()
	defer h.opsMu.RUnlock()
	if h.opsClosed {
		q.mu.Unlock()
		return false
	}
	q.pending = append(q.pending, fn)
	if q.running {
		q.mu.Unlock()
		return true
	}
	q.running = true
	q.mu.Unlock()
	h.ops.Add(1)
	go c.runOps(q)
	return true
}

func (c *Conn) runOps(q *opQueue) {
	h := c.app.hub
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
