package broker

import "time"

// SetClock replaces the clock b uses for cache expiry, so that tests can
// step time instead of sleeping.
func (b *Memory) SetClock(now func() time.Time) { b.now = now }
