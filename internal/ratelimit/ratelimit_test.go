package ratelimit

import (
	"testing"
	"time"
)

// The bucket is driven by the times it is given, so these tests step a
// virtual clock. Each expected count is at least a quarter token away from a
// boundary, so floating-point rounding cannot change it.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// drain takes tokens at now until refused and reports how many it got.
func drain(b *Bucket, now time.Time) int {
	n := 0
	for b.Take(now) {
		n++
		if n > 1000 {
			break
		}
	}
	return n
}

func TestTokenBucketBurst(t *testing.T) {
	for _, rate := range []int{1, 10, 100} {
		b := New(rate, t0)
		if got := drain(&b, t0); got != rate {
			t.Errorf("rate %d: burst of %d, want %d", rate, got, rate)
		}
		if b.Take(t0) {
			t.Errorf("rate %d: token granted after the burst at the same instant", rate)
		}
	}
}

func TestTokenBucketRefill(t *testing.T) {
	b := New(10, t0)
	drain(&b, t0)
	steps := []struct {
		at   time.Duration
		want int
	}{
		{50 * time.Millisecond, 0},  // 0.5 token
		{125 * time.Millisecond, 1}, // 0.5 + 0.75 = 1.25 → 1, 0.25 left
		{250 * time.Millisecond, 1}, // 0.25 + 1.25 = 1.5 → 1
		{375 * time.Millisecond, 1}, // 0.5 + 1.25 = 1.75 → 1
		{time.Hour, 10},             // idle: capped at the burst, not 36000
		{time.Hour + 500*time.Millisecond, 5},
	}
	for _, s := range steps {
		if got := drain(&b, t0.Add(s.at)); got != s.want {
			t.Errorf("at +%v: %d tokens, want %d", s.at, got, s.want)
		}
	}
}

// TestTokenBucketSustainedRate sends as fast as allowed for ten seconds.
func TestTokenBucketSustainedRate(t *testing.T) {
	b := New(10, t0)
	total := 0
	for i := 0; i <= 80; i++ {
		total += drain(&b, t0.Add(time.Duration(i)*125*time.Millisecond))
	}
	// The burst of 10 plus 10 per second for 10 s.
	if total != 110 {
		t.Errorf("%d events in 10s at 10/s with a burst of 10, want 110", total)
	}
}

func TestTokenBucketClockBackwards(t *testing.T) {
	b := New(10, t0)
	drain(&b, t0)
	if b.Take(t0.Add(-time.Hour)) {
		t.Fatal("a clock step backwards granted a token")
	}
	// Refill is measured from the latest time seen, not the earlier one.
	if got := drain(&b, t0.Add(250*time.Millisecond)); got != 2 {
		t.Errorf("after the backwards step, +250ms gave %d tokens, want 2", got)
	}
}

func TestTokenBucketZeroRate(t *testing.T) {
	b := New(0, t0)
	if b.Take(t0) || b.Take(t0.Add(time.Hour)) {
		t.Error("a zero rate granted a token")
	}
}

func TestTokenBucketLargerBurst(t *testing.T) {
	b := NewBurst(10, 100, t0)
	if got := drain(&b, t0); got != 100 {
		t.Fatalf("burst of %d, want 100", got)
	}
	// Refills at the rate, not the burst: 0.5 s is 5 tokens.
	if got := drain(&b, t0.Add(525*time.Millisecond)); got != 5 {
		t.Errorf("after 0.525 s: %d tokens, want 5", got)
	}
	// Idle, it fills back to the burst and no further.
	if got := drain(&b, t0.Add(time.Hour)); got != 100 {
		t.Errorf("after an hour: %d tokens, want 100", got)
	}
}

func TestTokenBucketFull(t *testing.T) {
	b := NewBurst(10, 100, t0)
	if !b.Full(t0) {
		t.Fatal("a new bucket is not full")
	}
	b.Take(t0)
	if b.Full(t0.Add(50 * time.Millisecond)) {
		t.Error("full half a token after a take")
	}
	if !b.Full(t0.Add(100 * time.Millisecond)) {
		t.Error("not full a token's time after a take")
	}
	drain(&b, t0)
	if b.Full(t0.Add(9750 * time.Millisecond)) {
		t.Error("full before the burst's refill time")
	}
	if !b.Full(t0.Add(10 * time.Second)) {
		t.Error("not full after the burst's refill time")
	}
}
