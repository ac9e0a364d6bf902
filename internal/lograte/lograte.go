// Package lograte bounds how often one kind of log line is written. A
// failure that every client request meets (the broker being unreachable,
// say) would otherwise write a line per request: as many as clients care
// to cause, and the one line that matters drowns in them.
package lograte

import (
	"sync"
	"time"
)

// Limiter lets through at most Burst lines per Every and counts the rest.
// The zero value lets everything through. It is safe for concurrent use.
type Limiter struct {
	Every time.Duration
	Burst int
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time

	mu         sync.Mutex
	start      time.Time
	used       int
	suppressed uint64
}

// Allow reports whether a line may be written now. When it may, suppressed
// is the number of lines refused since the last one allowed, for the line
// to mention.
func (l *Limiter) Allow() (ok bool, suppressed uint64) {
	if l.Every <= 0 || l.Burst <= 0 {
		return true, 0
	}
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	t := now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.Sub(l.start) >= l.Every {
		l.start, l.used = t, 0
	}
	if l.used >= l.Burst {
		l.suppressed++
		return false, 0
	}
	l.used++
	n := l.suppressed
	l.suppressed = 0
	return true, n
}
