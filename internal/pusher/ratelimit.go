package pusher

import "time"

// tokenBucket limits client events per connection: rate tokens per second,
// bursting up to rate. It is guarded by its session's lock.
type tokenBucket struct {
	rate   float64
	tokens float64
	last   time.Time
}

func newTokenBucket(perSecond int, now time.Time) tokenBucket {
	return tokenBucket{rate: float64(perSecond), tokens: float64(perSecond), last: now}
}

// take spends one token if there is one.
func (b *tokenBucket) take(now time.Time) bool {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens += el * b.rate
		if b.tokens > b.rate {
			b.tokens = b.rate
		}
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
