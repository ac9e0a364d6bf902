package redisbroker

import (
	"testing"
	"time"
)

// A failed heartbeat is tried again after a second, then after twice as
// long each time it fails again, never longer than a Refresh.
func TestHeartbeatRetry(t *testing.T) {
	for _, tc := range []struct {
		failures int
		refresh  time.Duration
		want     time.Duration
	}{
		{0, 5 * time.Second, time.Second},
		{1, 5 * time.Second, 2 * time.Second},
		{2, 5 * time.Second, 4 * time.Second},
		{3, 5 * time.Second, 5 * time.Second},
		{1000, 5 * time.Second, 5 * time.Second},
		{0, 200 * time.Millisecond, 200 * time.Millisecond},
		{40, 30 * time.Second, 30 * time.Second},
	} {
		if got := heartbeatRetry(tc.failures, tc.refresh); got != tc.want {
			t.Errorf("heartbeatRetry(%d, %v) = %v, want %v", tc.failures, tc.refresh, got, tc.want)
		}
	}
}
