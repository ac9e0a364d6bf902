package server

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// pendingLimit counts the pending connections and bounds them.
type pendingLimit struct {
	max int64 // 0: no bound
	n   atomic.Int64
	log *slog.Logger
	// Connections closed over the bound are reported at most once per
	// pendingReportEvery, with how many there were since the last report.
	closed     atomic.Int64
	lastReport atomic.Int64 // UnixNano
}

// pendingReportEvery spaces the reports of connections closed over the
// bound: a flood of them must not become a flood of log lines.
const pendingReportEvery = 10 * time.Second

// acquire takes a slot for a connection just accepted, or reports that the
// connection is to be closed at once.
func (p *pendingLimit) acquire() bool {
	if n := p.n.Add(1); p.max == 0 || n <= p.max {
		return true
	}
	p.n.Add(-1)
	p.closed.Add(1)
	now := time.Now().UnixNano()
	if last := p.lastReport.Load(); now-last >= int64(pendingReportEvery) && p.lastReport.CompareAndSwap(last, now) {
		p.log.Warn("too many connections pending: closing new ones at once",
			"max_pending_connections", p.max, "closed", p.closed.Swap(0))
	}
	return false
}

func (p *pendingLimit) release() { p.n.Add(-1) }

// count is the number of pending connections.
func (p *pendingLimit) count() int { return int(p.n.Load()) }
