// Package testkit holds the fakes that Herald's tests share: a clock that
// tests step by hand, so that timers fire without sleeping.
package testkit

import (
	"slices"
	"sync"
	"time"

	"github.com/heraldhq/herald/internal/hub"
)

// Clock is a hub.Clock whose time moves only when Advance is called. Timers
// due by then fire, in order of their due time, on the caller's goroutine.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*timer
	conn   map[*hub.ConnTimer]*timer // the timers of Arm
}

var _ hub.SessionClock = (*Clock)(nil)

// NewClock returns a clock at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now implements hub.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc implements hub.Clock.
func (c *Clock) AfterFunc(d time.Duration, f func()) hub.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, f: f, due: c.now.Add(d), dur: d, armed: true}
	c.timers = append(c.timers, t)
	return t
}

// Arm implements hub.SessionClock: t becomes a timer like AfterFunc's,
// which Stop and Reset on it; it fires through t.Fire.
func (c *Clock) Arm(t *hub.ConnTimer, d time.Duration) bool {
	c.mu.Lock()
	tm, ok := c.conn[t]
	if !ok {
		if c.conn == nil {
			c.conn = make(map[*hub.ConnTimer]*timer)
		}
		tm = &timer{c: c, f: t.Fire}
		c.conn[t] = tm
	}
	c.mu.Unlock()
	return tm.Reset(d)
}

// ArmWithin implements hub.SessionClock.
func (c *Clock) ArmWithin(t *hub.ConnTimer, d time.Duration) {
	c.mu.Lock()
	tm, ok := c.conn[t]
	sooner := ok && tm.armed && !tm.due.After(c.now.Add(d))
	c.mu.Unlock()
	if !sooner {
		c.Arm(t, d)
	}
}

// Disarm implements hub.SessionClock.
func (c *Clock) Disarm(t *hub.ConnTimer) bool {
	c.mu.Lock()
	tm, ok := c.conn[t]
	c.mu.Unlock()
	return ok && tm.Stop()
}

// Advance moves the clock forward by d, firing every timer that falls due,
// including ones that the fired functions arm or reset within the window.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *timer
		for _, t := range c.timers {
			if t.armed && !t.due.After(end) && (next == nil || t.due.Before(next.due)) {
				next = t
			}
		}
		if next == nil {
			c.now = end
			c.timers = slices.DeleteFunc(c.timers, func(t *timer) bool { return !t.armed })
			c.mu.Unlock()
			return
		}
		next.armed = false
		if next.due.After(c.now) {
			c.now = next.due
		}
		f := next.f
		c.mu.Unlock()
		f()
	}
}

// Pending is the number of armed timers.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if t.armed {
			n++
		}
	}
	return n
}

// Armed reports whether a timer armed for d (as given to AfterFunc or
// Reset) is waiting, for a test that steps the clock only once the code
// under test has set the timer it expects.
func (c *Clock) Armed(d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.timers {
		if t.armed && t.dur == d {
			return true
		}
	}
	return false
}

// ArmedDurations lists the durations of the armed timers.
func (c *Clock) ArmedDurations() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Duration
	for _, t := range c.timers {
		if t.armed {
			out = append(out, t.dur)
		}
	}
	return out
}

type timer struct {
	c     *Clock
	f     func()
	due   time.Time
	dur   time.Duration
	armed bool
}

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.armed
	t.armed = false
	return was
}

func (t *timer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.armed
	t.armed = true
	t.due = t.c.now.Add(d)
	t.dur = d
	if !slices.Contains(t.c.timers, t) {
		t.c.timers = append(t.c.timers, t)
	}
	return was
}
