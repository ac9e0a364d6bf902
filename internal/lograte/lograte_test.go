package lograte

import (
	"sync"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := &Limiter{Every: time.Second, Burst: 2, Now: func() time.Time { return now }}
	var got []bool
	for range 5 {
		ok, _ := l.Allow()
		got = append(got, ok)
	}
	if want := []bool{true, true, false, false, false}; !equal(got, want) {
		t.Fatalf("allowed %v, want %v", got, want)
	}
	now = now.Add(time.Second)
	ok, suppressed := l.Allow()
	if !ok || suppressed != 3 {
		t.Fatalf("next window: allowed %v with %d suppressed, want true with 3", ok, suppressed)
	}
	if ok, suppressed := l.Allow(); !ok || suppressed != 0 {
		t.Fatalf("second line of the window: %v, %d suppressed", ok, suppressed)
	}
}

func TestZeroLimiterAllowsAll(t *testing.T) {
	var l Limiter
	for range 100 {
		if ok, _ := l.Allow(); !ok {
			t.Fatal("the zero Limiter refused a line")
		}
	}
}

func TestLimiterConcurrent(t *testing.T) {
	l := &Limiter{Every: time.Hour, Burst: 10}
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if ok, _ := l.Allow(); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if allowed != 10 {
		t.Fatalf("%d lines allowed in one window, want 10", allowed)
	}
}

func equal(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
