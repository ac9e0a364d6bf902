package hub

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestHeapClockFiresInOrder(t *testing.T) {
	c := NewHeapClock()
	var mu sync.Mutex
	var fired []time.Time // the deadlines, in the order their timers fired
	var wg sync.WaitGroup
	for _, n := range []int{5, 1, 4, 2, 3} {
		wg.Add(1)
		d := time.Duration(n) * 20 * time.Millisecond
		due := time.Now().Add(d)
		c.AfterFunc(d, func() {
			if now := time.Now(); now.Before(due) {
				t.Errorf("a timer fired %v early", due.Sub(now))
			}
			mu.Lock()
			fired = append(fired, due)
			mu.Unlock()
			wg.Done()
		})
	}
	wg.Wait()
	for i := 1; i < len(fired); i++ {
		if fired[i].Before(fired[i-1]) {
			t.Fatalf("timer %d fired before one due %v earlier", i-1, fired[i-1].Sub(fired[i]))
		}
	}
}

func TestHeapClockStopAndReset(t *testing.T) {
	c := NewHeapClock()
	fired := make(chan int, 4)
	a := c.AfterFunc(time.Hour, func() { fired <- 1 })
	b := c.AfterFunc(time.Hour, func() { fired <- 2 })
	if !a.Stop() {
		t.Error("Stop of an armed timer returned false")
	}
	if a.Stop() {
		t.Error("Stop of a stopped timer returned true")
	}
	if a.Reset(10 * time.Millisecond) {
		t.Error("Reset of a stopped timer returned true")
	}
	if !b.Reset(20 * time.Millisecond) {
		t.Error("Reset of an armed timer returned false")
	}
	if n := <-fired; n != 1 {
		t.Fatalf("timer %d fired first", n)
	}
	if n := <-fired; n != 2 {
		t.Fatalf("timer %d fired second", n)
	}
	if a.Stop() || b.Stop() {
		t.Error("Stop of a fired timer returned true")
	}
	// Brought forward: the runtime timer, armed for an hour, is re-armed.
	d := c.AfterFunc(time.Hour, func() { fired <- 3 })
	d.Reset(time.Millisecond)
	select {
	case n := <-fired:
		if n != 3 {
			t.Fatalf("timer %d fired", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a timer brought forward did not fire")
	}
	c.mu.Lock()
	left := len(c.heap)
	c.mu.Unlock()
	if left != 0 {
		t.Errorf("%d entries left in the heap", left)
	}
}

// Timers armed, reset and stopped from many goroutines, also from their own
// callbacks: each one not stopped fires exactly once per arming, never
// before it is due.
func TestHeapClockConcurrent(t *testing.T) {
	c := NewHeapClock()
	const n = 400
	var wg sync.WaitGroup
	var mu sync.Mutex
	fires := make([]int, n)
	early := 0
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var tm Timer
			var due time.Time
			var again sync.WaitGroup
			again.Add(2)
			first := true
			f := func() {
				mu.Lock()
				fires[i]++
				if time.Now().Before(due) {
					early++
				}
				mu.Unlock()
				if first {
					first = false
					due = time.Now().Add(time.Millisecond)
					tm.Reset(time.Millisecond) // re-armed from its own callback
				}
				again.Done()
			}
			d := time.Duration(rand.IntN(30)) * time.Millisecond
			due = time.Now().Add(d)
			tm = c.AfterFunc(time.Hour, f)
			if rand.IntN(2) == 0 {
				tm.Stop()
			}
			tm.Reset(d)
			again.Wait()
		}()
	}
	wg.Wait()
	for i, k := range fires {
		if k != 2 {
			t.Fatalf("timer %d fired %d times, want 2", i, k)
		}
	}
	if early > 0 {
		t.Errorf("%d timers fired early", early)
	}
}

type alarmFunc func()

func (f alarmFunc) Alarm() { f() }

// A ConnTimer lives in its owner: arming, re-arming and disarming it
// allocates nothing once the heap has room.
func TestConnTimerAllocatesNothing(t *testing.T) {
	c := NewHeapClock()
	var tm ConnTimer
	tm.Init(alarmFunc(func() {}))
	c.Arm(&tm, time.Hour)
	c.Disarm(&tm)
	if n := testing.AllocsPerRun(100, func() {
		c.Arm(&tm, time.Hour)
		c.Arm(&tm, 2*time.Hour)
		c.ArmWithin(&tm, time.Minute)
		c.Disarm(&tm)
	}); n != 0 {
		t.Errorf("%v allocations per arming", n)
	}
}

func TestConnTimerArmWithin(t *testing.T) {
	c := NewHeapClock()
	fired := make(chan string, 2)
	var a, b ConnTimer
	a.Init(alarmFunc(func() { fired <- "a" }))
	b.Init(alarmFunc(func() { fired <- "b" }))
	if c.Disarm(&a) {
		t.Error("Disarm of a timer never armed returned true")
	}
	c.ArmWithin(&a, 30*time.Millisecond) // not armed: armed for 30 ms
	c.Arm(&b, 10*time.Millisecond)
	c.ArmWithin(&b, time.Hour) // armed sooner: left alone
	if n := <-fired; n != "b" {
		t.Fatalf("%s fired first", n)
	}
	if n := <-fired; n != "a" {
		t.Fatalf("%s fired second", n)
	}
	c.Arm(&a, time.Hour)
	c.ArmWithin(&a, time.Millisecond) // brought forward
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("a timer brought forward by ArmWithin did not fire")
	}
	if c.Disarm(&a) || c.Disarm(&b) {
		t.Error("Disarm of a fired timer returned true")
	}
}

// A ConnTimer armed by one clock and handed to another would corrupt both
// heaps; the second clock refuses it.
func TestConnTimerOtherClockPanics(t *testing.T) {
	c1, c2 := NewHeapClock(), NewHeapClock()
	var tm, other ConnTimer
	tm.Init(alarmFunc(func() {}))
	other.Init(alarmFunc(func() {}))
	c1.Arm(&tm, time.Hour)
	c2.Arm(&other, time.Hour)
	defer func() {
		if recover() == nil {
			t.Error("another clock's timer was accepted")
		}
	}()
	c2.Disarm(&tm)
}
