// Package ratelimit holds the token bucket that bounds what one connection
// may do per second (publish Pusher client events or Centrifugo
// publications, join presence channels), and what one user may do on a node
// (join presence channels, sign in).
package ratelimit

import "time"

// Bucket allows rate events per second, bursting up to its size. It is
// not safe for concurrent use: its owner (a session, or a shard of the
// hub's user budgets) guards it with its lock.
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

// Full reports whether the bucket has refilled to its size by now: it then
// allows what a new bucket would, and its owner may drop it.
func (b *Bucket) Full(now time.Time) bool {
	return b.tokens+now.Sub(b.last).Seconds()*b.rate >= b.size
}
