// Package ratelimit holds the token bucket that bounds what one connection
// may publish per second (Pusher client events, Centrifugo publishes).
package ratelimit

import "time"

// Bucket allows rate events per second, bursting up to rate. It is not
// safe for concurrent use: its owner (a session) guards it with its lock.
type Bucket struct {
	rate   float64
	tokens float64
	last   time.Time
}

// New returns a full bucket of perSecond tokens.
func New(perSecond int, now time.Time) Bucket {
	return Bucket{rate: float64(perSecond), tokens: float64(perSecond), last: now}
}

// Take spends one token if there is one.
func (b *Bucket) Take(now time.Time) bool {
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
