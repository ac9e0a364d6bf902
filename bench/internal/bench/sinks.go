package bench

import (
	"errors"
	"net"
	"sync/atomic"
)

// countSink only counts benchmark events.
type countSink struct{ n atomic.Uint64 }

func (s *countSink) message(_ *conn, event, _ []byte, _ int64, _ *shard) {
	if string(event) == EventName {
		s.n.Add(1)
	}
}

// nopSink ignores everything (idle and connect scenarios).
type nopSink struct{}

func (nopSink) message(*conn, []byte, []byte, int64, *shard) {}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
