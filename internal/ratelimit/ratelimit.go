// Package ratelimit holds the token bucket that bounds what one connection
// may do per second: publish (Pusher client events, Centrifugo publishes)
// or join presence channels.
package ratelimit

import "time"

// Bucket allows rate events per second, bursting up to its size. It is
// not safe for concurrent use: its owner (a session) guards it with its
// lock.
type Bucket struct {
	rate   float64
	size   float64
	tokens float64
	last   time.Time
}

// New returns a full bucket of perSecond tokens.
func New(perSecond int, now time.Time) Bucket {
	return NewBurst(perSecond, perSecond, now)
}

// NewBurst returns a full bucket of burst tokens that refills at perSecond.
func NewBurst(perSecond, burst int, now time.Time) Bucket {
	return Bucket{rate: float64(perSecond), size: float64(burst), tokens: float64(burst), last: now}
}

// Take spends one token if there is one.
func (b *Bucket) Take(now time.Time) bool {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens += el * b.rate
		if b.tokens > b.size {
			b.tokens = b.size
		}
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
