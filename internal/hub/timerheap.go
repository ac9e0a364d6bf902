package hub

import (
	"sync"
	"time"
)

// ConnClock is the real clock for per-connection timers: every timer is an
// entry of one heap served by a single runtime timer. A time.Timer costs
// about 128 bytes; an idle connection holds one for as long as it lives, so
// a session's timer is a ConnTimer in the session itself instead.
// Callbacks run one after another on the goroutine the runtime timer fires
// on, never under the heap's lock; like time.AfterFunc's, they must not wait
// for one another.
var ConnClock SessionClock = NewHeapClock()

// SessionClock is the clock of sessions: besides Clock's timers it arms the
// ConnTimers that sessions embed.
type SessionClock interface {
	Clock
	// Arm arms t to fire after d, replacing its deadline if it is armed,
	// and reports whether it was. t fires once per arming.
	Arm(t *ConnTimer, d time.Duration) bool
	// ArmWithin makes t fire within d: it is armed for d unless it is
	// already armed to fire sooner.
	ArmWithin(t *ConnTimer, d time.Duration)
	// Disarm stops t and reports whether it was armed. Disarming a timer
	// that was never armed is a no-op.
	Disarm(t *ConnTimer) bool
}

// Alarm is what a ConnTimer calls when it fires.
type Alarm interface{ Alarm() }

// ConnTimer is a timer embedded in the state of the connection it serves,
// so that an idle connection's timer is neither an allocation of its own nor
// a closure: it calls the Alarm given to Init. One SessionClock arms it, and
// only through that clock are its fields touched, under the clock's lock.
type ConnTimer struct {
	alarm Alarm
	when  int64 // HeapClock: nanoseconds since the clock's start
	pos   int32 // HeapClock: index in the heap plus one; 0: not armed
}

// Init names what t calls; it comes before t is first armed.
func (t *ConnTimer) Init(a Alarm) { t.alarm = a }

// Fire calls t's Alarm. It is for SessionClocks outside this package; a
// clock calls it once t is due and no longer armed.
func (t *ConnTimer) Fire() { t.alarm.Alarm() }

// HeapClock is a SessionClock whose timers share one runtime timer.
type HeapClock struct {
	start time.Time // anchors the entries' monotonic deadlines

	mu   sync.Mutex
	heap []*ConnTimer // a min-heap by when
	rt   *time.Timer  // fires at rtAt; nil until the first timer
	rtAt int64        // 0: rt is not armed
}

// NewHeapClock returns a clock with no timers.
func NewHeapClock() *HeapClock { return &HeapClock{start: time.Now()} }

var _ SessionClock = (*HeapClock)(nil)

// Now implements Clock.
func (c *HeapClock) Now() time.Time { return time.Now() }

func (c *HeapClock) since() int64 { return int64(time.Since(c.start)) }

// funcTimer is a Clock timer on the heap: a ConnTimer calling f.
type funcTimer struct {
	t ConnTimer
	c *HeapClock
	f func()
}

func (ft *funcTimer) Alarm()                     { ft.f() }
func (ft *funcTimer) Stop() bool                 { return ft.c.Disarm(&ft.t) }
func (ft *funcTimer) Reset(d time.Duration) bool { return ft.c.Arm(&ft.t, d) }

// AfterFunc implements Clock.
func (c *HeapClock) AfterFunc(d time.Duration, f func()) Timer {
	ft := &funcTimer{c: c, f: f}
	ft.t.Init(ft)
	c.Arm(&ft.t, d)
	return ft
}

// Arm implements SessionClock.
func (c *HeapClock) Arm(t *ConnTimer, d time.Duration) bool {
	return c.arm1(t, d, false)
}

// ArmWithin implements SessionClock.
func (c *HeapClock) ArmWithin(t *ConnTimer, d time.Duration) {
	c.arm1(t, d, true)
}

// arm1 arms t for d; if within, only when that is sooner than t's deadline.
func (c *HeapClock) arm1(t *ConnTimer, d time.Duration, within bool) bool {
	when := c.since() + int64(max(d, 0))
	c.mu.Lock()
	defer c.mu.Unlock()
	active := t.pos != 0
	if within && active && t.when <= when {
		return true
	}
	if active {
		c.remove(c.index(t))
	}
	t.when = when
	c.heap = append(c.heap, t)
	t.pos = int32(len(c.heap))
	c.up(len(c.heap) - 1)
	c.arm()
	return active
}

// Disarm implements SessionClock.
func (c *HeapClock) Disarm(t *ConnTimer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.pos == 0 {
		return false
	}
	c.remove(c.index(t))
	return true
}

// index is where the armed t sits in the heap. A timer armed by another
// clock would corrupt both heaps, so it is refused loudly. c.mu is held.
func (c *HeapClock) index(t *ConnTimer) int {
	i := int(t.pos) - 1
	if i >= len(c.heap) || c.heap[i] != t {
		panic("hub: ConnTimer armed by another clock")
	}
	return i
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

// fire calls the Alarms of the entries that are due.
func (c *HeapClock) fire() {
	var due []Alarm
	c.mu.Lock()
	now := c.since()
	for len(c.heap) > 0 && c.heap[0].when <= now {
		due = append(due, c.heap[0].alarm)
		c.remove(0)
	}
	c.rtAt = 0
	c.arm()
	c.mu.Unlock()
	for _, a := range due {
		a.Alarm()
	}
}

// remove takes the entry at i out of the heap. c.mu is held.
func (c *HeapClock) remove(i int) {
	h := c.heap
	t := h[i]
	last := len(h) - 1
	if i != last {
		h[i] = h[last]
		h[i].pos = int32(i + 1)
	}
	h[last] = nil
	c.heap = h[:last]
	if i != last {
		c.down(i)
		c.up(i)
	}
	t.pos = 0
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
		h[p].pos, h[i].pos = int32(p+1), int32(i+1)
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
		h[i].pos, h[m].pos = int32(i+1), int32(m+1)
		i = m
	}
}
