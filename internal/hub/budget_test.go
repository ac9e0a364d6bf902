package hub

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/broker"
)

// stepClock is a Clock that moves only when step is called; the timers due
// by then fire on the caller's goroutine. (testkit.Clock imports the hub.)
type stepClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*stepTimer
}

type stepTimer struct {
	c     *stepClock
	f     func()
	due   time.Time
	armed bool
}

func (c *stepClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *stepClock) AfterFunc(d time.Duration, f func()) Timer {
	t := &stepTimer{c: c, f: f}
	t.Reset(d)
	return t
}

func (t *stepTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.armed
	t.armed = false
	return was
}

func (t *stepTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.armed
	t.armed, t.due = true, t.c.now.Add(d)
	for _, x := range t.c.timers {
		if x == t {
			return was
		}
	}
	t.c.timers = append(t.c.timers, t)
	return was
}

// step moves the clock by d, firing what falls due on the way.
func (c *stepClock) step(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *stepTimer
		for _, t := range c.timers {
			if t.armed && !t.due.After(end) && (next == nil || t.due.Before(next.due)) {
				next = t
			}
		}
		if next == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		next.armed = false
		c.now = next.due
		c.mu.Unlock()
		next.f()
	}
}

func (c *stepClock) armed() int {
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

func newClockedHub() (*Hub, *stepClock) {
	c := &stepClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	return New(Config{Broker: broker.NewMemory(0), Clock: c}), c
}

// presenceBudget is apps.App's default presence_join_rate and its burst.
var presenceBudget = Budget{Rate: 10, Burst: 100}

func joins(h *Hub, app, user string, n int) int {
	got := 0
	for range n {
		if h.TakeJoin(app, user, presenceBudget) {
			got++
		}
	}
	return got
}

func TestTakeJoinBurstThenRate(t *testing.T) {
	h, c := newClockedHub()
	if got := joins(h, "app", "u", 150); got != 100 {
		t.Fatalf("%d joins at once, want the burst of 100", got)
	}
	if got := joins(h, "other", "u", 5) + joins(h, "app", "v", 5); got != 10 {
		t.Errorf("the same id in another app, or another user, was refused: %d of 10", got)
	}
	if !h.budgets.take(budgetKey{"app", "u", budgetSignin}, presenceBudget) {
		t.Error("the user's joins emptied its sign-in budget")
	}
	c.step(time.Second)
	if got := joins(h, "app", "u", 50); got != 10 {
		t.Fatalf("%d joins a second after the burst, want the rate of 10", got)
	}
	if !h.TakeJoin("app", "u", Budget{}) {
		t.Error("a zero Budget refused")
	}
}

// The entry of a user goes once its bucket is full again, and the sweep's
// timer with the last one: an idle node holds neither.
func TestUserBudgetsSwept(t *testing.T) {
	h, c := newClockedHub()
	for i := range 1000 {
		h.TakeJoin("app", "u"+strconv.Itoa(i), presenceBudget) // refills in 0.1 s
	}
	joins(h, "app", "loop", 100) // empty: refills in 10 s
	if n := h.budgets.entries(); n != 1001 {
		t.Fatalf("%d entries, want 1001", n)
	}
	c.step(budgetSweep)
	if n := h.budgets.entries(); n != 1 {
		t.Fatalf("%d entries after a sweep, want only the empty bucket's", n)
	}
	c.step(9*time.Second - budgetSweep)
	if n := h.budgets.entries(); n != 1 {
		t.Fatalf("%d entries before the refill, want 1", n)
	}
	c.step(time.Second)
	if n, timers := h.budgets.entries(), c.armed(); n != 0 || timers != 0 {
		t.Fatalf("refilled: %d entries, %d timers armed; want none", n, timers)
	}
	// The budget starts full again, and so does the sweep.
	if got := joins(h, "app", "loop", 150); got != 100 || c.armed() != 1 {
		t.Fatalf("after the sweep: %d joins, %d timers", got, c.armed())
	}
	if err := h.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c.armed() != 0 {
		t.Error("Close left the sweep armed")
	}
	h.TakeJoin("app", "late", presenceBudget)
	if c.armed() != 0 {
		t.Error("a join after Close armed the sweep")
	}
}

// A user signing in and out in a loop is held to its sign-in budget, so its
// watchers hear at most two events per token; a second connection of a
// user signed in on the node costs nothing.
func TestSignInBudget(t *testing.T) {
	h, c := newClockedHub()
	w := &fakeUser{}
	h.Watch("app", w, []string{"u"})
	tab := &fakeUser{}
	ok := 0
	for range 150 {
		if h.SignIn("app", "u", tab, presenceBudget) {
			ok++
			h.SignOut("app", "u", tab)
		}
	}
	if ok != 100 || len(w.changes) != 200 {
		t.Fatalf("%d sign-ins, watcher heard %d changes; want 100, 200", ok, len(w.changes))
	}
	if h.Online("app", "u") {
		t.Fatal("a refused sign-in signed in")
	}
	c.step(time.Second)
	first, second := &fakeUser{}, &fakeUser{}
	if !h.SignIn("app", "u", first, presenceBudget) {
		t.Fatal("refused after a second's refill")
	}
	for range 20 {
		if !h.SignIn("app", "u", second, presenceBudget) {
			t.Fatal("a second connection of a signed-in user was refused")
		}
	}
	if !h.SignIn("app", "v", &fakeUser{}, presenceBudget) {
		t.Fatal("another user was refused")
	}
	if fmt.Sprint(w.changes[200:]) != "[u:true]" {
		t.Errorf("watcher then heard %v", w.changes[200:])
	}
}

// BenchmarkTakeJoin is the cost a presence join pays for its user's budget:
// from both cores, each join by one of 10 000 users.
func BenchmarkTakeJoin(b *testing.B) {
	h := New(Config{Broker: broker.NewMemory(0)})
	defer h.Close(b.Context())
	users := make([]string, 10000)
	for i := range users {
		users[i] = "user-" + strconv.Itoa(i)
	}
	lim := Budget{Rate: 1 << 20, Burst: 1 << 20} // never refuses
	var next atomic.Uint32
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		for pb.Next() {
			i++
			h.TakeJoin("app", users[i%len(users)], lim)
		}
	})
}
