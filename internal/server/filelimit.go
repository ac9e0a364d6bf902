package server

import (
	"context"
	"fmt"
	"log/slog"
)

// reservedFiles is what a node keeps open besides client connections:
// listeners, pollers, REST clients, logs.
const reservedFiles = 64

// fileLimitAdvice says what the open-file limit means for connections: every
// WebSocket connection holds a file descriptor, so the limit, not memory, is
// usually what caps a node first. It returns "" when there is nothing to say.
func fileLimitAdvice(limit uint64, maxConnections int) (slog.Level, string) {
	room := int64(limit) - reservedFiles
	switch {
	case maxConnections > 0 && int64(maxConnections) > room:
		return slog.LevelWarn, fmt.Sprintf("max_connections is %d but the open-file limit (%d) allows about %d; "+
			"raise the limit (ulimit -n, or LimitNOFILE= for systemd)", maxConnections, limit, max(room, 0))
	case maxConnections == 0 && limit < 65536:
		return slog.LevelInfo, fmt.Sprintf("the open-file limit (%d) caps this node at about %d connections; "+
			"raise it (ulimit -n, or LimitNOFILE= for systemd) for more", limit, max(room, 0))
	}
	return 0, ""
}

// logFileLimit logs fileLimitAdvice for this process. Go raises the soft
// limit to the hard one at start, so the soft limit is what applies.
func (s *Server) logFileLimit() {
	limit, ok := openFileLimit()
	if !ok {
		return
	}
	if level, msg := fileLimitAdvice(limit, s.cfg.MaxConnections); msg != "" {
		s.log.Log(context.Background(), level, msg)
	}
}
