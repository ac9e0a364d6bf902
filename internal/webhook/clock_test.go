package webhook_test

import (
	"github.com/heraldhq/herald/internal/transport"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/hub"
)

// manualClock is a hub.Clock that moves only when the test advances it.
// Timers due by then fire in Advance, in due order, on the test's
// goroutine.
type manualClock struct {
	mu     sync.Mutex
	cond   *sync.Cond
	now    time.Time
	timers []*manualTimer
}

type manualTimer struct {
	c   *manualClock
	at  time.Time
	dur time.Duration
	f   func()
}

func newClock() *manualClock {
	c := &manualClock{now: time.UnixMilli(1_700_000_000_000)}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) hub.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{c: c, at: c.now.Add(d), dur: d, f: f}
	c.timers = append(c.timers, t)
	c.cond.Broadcast()
	return t
}

func (t *manualTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	for i, x := range t.c.timers {
		if x == t {
			t.c.timers = append(t.c.timers[:i], t.c.timers[i+1:]...)
			t.c.cond.Broadcast()
			return true
		}
	}
	return false
}

func (t *manualTimer) Reset(d time.Duration) bool {
	active := t.Stop()
	t.c.mu.Lock()
	t.at, t.dur = t.c.now.Add(d), d
	t.c.timers = append(t.c.timers, t)
	t.c.mu.Unlock()
	return active
}

// Advance moves the clock by d and fires the timers due.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*manualTimer
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			due = append(due, t)
		} else {
			kept = append(kept, t)
		}
	}
	c.timers = kept
	c.cond.Broadcast()
	c.mu.Unlock()
	sort.SliceStable(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, t := range due {
		t.f()
	}
}

// hasTimer reports whether a timer of duration d is pending.
func (c *manualClock) hasTimer(d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range c.timers {
		if x.dur == d {
			return true
		}
	}
	return false
}

// waitTimer waits until a timer of duration d is pending, and fails the
// test after a few seconds of real time.
func (c *manualClock) waitTimer(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	stop := time.AfterFunc(5*time.Second, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer stop.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for _, x := range c.timers {
			if x.dur == d {
				return
			}
		}
		if time.Now().After(deadline) {
			var have []time.Duration
			for _, x := range c.timers {
				have = append(have, x.dur)
			}
			t.Fatalf("no timer of %v pending; have %v", d, have)
		}
		c.cond.Wait()
	}
}

type nopTransport struct{}

func (nopTransport) Start(transport.Handler) {}
func (nopTransport) Send([]byte) error       { return nil }
func (nopTransport) Close(int, string)       {}
func (nopTransport) Abort(int, string)       {}
func (nopTransport) LastRead() time.Time     { return time.Time{} }

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
