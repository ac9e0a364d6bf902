package broker

import "time"

// SetClock replaces the clock b uses for cache expiry, so that tests can
// step time instead of sleeping.
func (b *Memory) SetClock(now func() time.Time) { b.now = now }

// CountsKept is how many channel counts b holds itself.
func (b *Memory) CountsKept() int {
	b.countMu.Lock()
	defer b.countMu.Unlock()
	return len(b.counts)
}
