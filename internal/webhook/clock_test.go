package webhook_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/testkit"
	"github.com/heraldhq/herald/internal/transport"
)

// manualClock is the shared hand-stepped clock, with a wait for the timer
// the code under test is expected to set.
type manualClock struct{ *testkit.Clock }

func newClock() *manualClock {
	return &manualClock{testkit.NewClock(time.UnixMilli(1_700_000_000_000))}
}

// hasTimer reports whether a timer of duration d is armed.
func (c *manualClock) hasTimer(d time.Duration) bool { return c.Armed(d) }

// waitTimer waits until a timer of duration d is armed, and fails the
// test after a few seconds of real time.
func (c *manualClock) waitTimer(t *testing.T, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !c.Armed(d); {
		if time.Now().After(deadline) {
			t.Fatalf("no timer of %v pending; have %v", d, c.ArmedDurations())
		}
		time.Sleep(100 * time.Microsecond)
	}
}

type nopTransport struct{}

func (nopTransport) Start(transport.Handler) {}
func (nopTransport) Send([]byte) error       { return nil }
func (nopTransport) Close(int, string)       {}
func (nopTransport) Abort(int, string)       {}
func (nopTransport) LastRead() time.Time     { return time.Time{} }

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
