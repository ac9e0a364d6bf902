package hub

import (
	"sync"
	"time"
)

// ConnClock is the real clock for per-connection timers: every timer is an
// entry of one heap served by a single runtime timer. A time.Timer costs
// about 128 bytes; an idle connection holds one for as long as it lives, so
// the sessions' timers are 32-byte heap entries instead. Callbacks run one
// after another on the goroutine the runtime timer fires on, never under
// the heap's lock; like time.AfterFunc's, they must not wait for one
// another.
var ConnClock Clock = NewHeapClock()

// HeapClock is a Clock whose timers share one runtime timer.
type HeapClock struct {
	start time.Time // anchors the entries' monotonic deadlines

	mu   sync.Mutex
	heap []*heapTimer // a min-heap by when
	rt   *time.Timer  // fires at rtAt; nil until the first timer
	rtAt int64        // 0: rt is not armed
}

// NewHeapClock returns a clock with no timers.
func NewHeapClock() *HeapClock { return &HeapClock{start: time.Now()} }

type heapTimer struct {
	c    *HeapClock
	f    func()
	when int64 // nanoseconds since c.start
	idx  int   // position in c.heap; -1: not armed
}

var _ Clock = (*HeapClock)(nil)

// Now implements Clock.
func (c *HeapClock) Now() time.Time { return time.Now() }

func (c *HeapClock) since() int64 { return int64(time.Since(c.start)) }

// AfterFunc implements Clock.
func (c *HeapClock) AfterFunc(d time.Duration, f func()) Timer {
	t := &heapTimer{c: c, f: f, idx: -1}
	t.Reset(d)
	return t
}

// Stop implements Timer.
func (t *heapTimer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.idx < 0 {
		return false
	}
	c.remove(t.idx)
	return true
}

// Reset implements Timer.
func (t *heapTimer) Reset(d time.Duration) bool {
	c := t.c
	when := c.since() + int64(max(d, 0))
	c.mu.Lock()
	defer c.mu.Unlock()
	active := t.idx >= 0
	if active {
		c.remove(t.idx)
	}
	t.when = when
	t.idx = len(c.heap)
	c.heap = append(c.heap, t)
	c.up(t.idx)
	c.arm()
	return active
}

// arm makes the runtime timer fire when the earliest entry is due, if it
// would not already fire by then. Firing early is harmless (fire re-arms);
// late is not. c.mu is held.
func (c *HeapClock) arm() {
	if len(c.heap) == 0 {
		return
	}
	at := c.heap[0].when
	if c.rtAt != 0 && c.rtAt <= at {
		return
	}
	c.rtAt = at
	d := time.Duration(at - c.since())
	if c.rt == nil {
		c.rt = time.AfterFunc(d, c.fire)
		return
	}
	c.rt.Reset(d)
}

// fire runs the callbacks of the entries that are due.
func (c *HeapClock) fire() {
	var due []func()
	c.mu.Lock()
	now := c.since()
	for len(c.heap) > 0 && c.heap[0].when <= now {
		due = append(due, c.heap[0].f)
		c.remove(0)
	}
	c.rtAt = 0
	c.arm()
	c.mu.Unlock()
	for _, f := range due {
		f()
	}
}

// remove takes the entry at i out of the heap. c.mu is held.
func (c *HeapClock) remove(i int) {
	h := c.heap
	t := h[i]
	last := len(h) - 1
	if i != last {
		h[i] = h[last]
		h[i].idx = i
	}
	h[last] = nil
	c.heap = h[:last]
	if i != last {
		c.down(i)
		c.up(i)
	}
	t.idx = -1
	if len(c.heap) == 0 && cap(c.heap) > 1024 {
		c.heap = nil // a burst of connections has gone: so has its array
	}
}

func (c *HeapClock) up(i int) {
	h := c.heap
	for i > 0 {
		p := (i - 1) / 2
		if h[p].when <= h[i].when {
			return
		}
		h[p], h[i] = h[i], h[p]
		h[p].idx, h[i].idx = p, i
		i = p
	}
}

func (c *HeapClock) down(i int) {
	h := c.heap
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r].when < h[l].when {
			m = r
		}
		if h[i].when <= h[m].when {
			return
		}
		h[i], h[m] = h[m], h[i]
		h[i].idx, h[m].idx = i, m
		i = m
	}
}
