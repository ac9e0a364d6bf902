package hub

import "time"

// Clock is where sessions get the time and their timers; tests substitute
// a clock they step by hand.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f on its own goroutine after d, like time.AfterFunc.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a timer of a Clock.
type Timer interface {
	Stop() bool
	Reset(d time.Duration) bool
}

// SystemClock is the real clock.
var SystemClock Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
func (systemClock) AfterFunc(d time.Duration, f func()) Timer {
	return time.AfterFunc(d, f)
}

// Liveness is the per-connection keep-alive rule every front end shares:
// a client silent for Activity is pinged, and one still silent PongTimeout
// after the ping is closed (ReasonPongTimeout). A session keeps one timer
// and asks Check what to do each time it fires; the zero Liveness has sent
// no ping. The timeouts are the caller's (they are per app and per node),
// so that every connection does not hold a copy.
type Liveness struct {
	pingSent int64 // unix nanoseconds of the unanswered ping; 0: none
}

// LivenessAction is what Check asks of the session.
type LivenessAction uint8

const (
	// LiveWait: nothing to do; re-arm the timer.
	LiveWait LivenessAction = iota
	// LivePing: send a ping now; re-arm the timer.
	LivePing
	// LiveTimeout: the client did not answer the ping; close it.
	LiveTimeout
)

// Check decides at now, given when the client last sent anything, the
// activity timeout and the pong timeout, and returns when to check next
// (for LiveWait and LivePing).
func (l *Liveness) Check(now, lastRead time.Time, activity, pongTimeout time.Duration) (LivenessAction, time.Duration) {
	if l.pingSent != 0 {
		sent := time.Unix(0, l.pingSent)
		switch {
		case lastRead.After(sent):
			l.pingSent = 0
		case now.Sub(sent) >= pongTimeout:
			return LiveTimeout, 0
		default:
			return LiveWait, pongTimeout - now.Sub(sent)
		}
	}
	if idle := now.Sub(lastRead); idle < activity {
		return LiveWait, activity - idle
	}
	l.pingSent = now.UnixNano()
	// Looked at again when the answer is due, or sooner if the activity
	// timeout is the shorter: a prompt pong then leaves the next ping an
	// activity timeout after it, not a pong timeout.
	return LivePing, min(pongTimeout, activity)
}
