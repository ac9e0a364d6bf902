package server

import (
	"log/slog"
	"strings"
	"testing"
)

func TestFileLimitAdvice(t *testing.T) {
	for _, tc := range []struct {
		limit   uint64
		maxConn int
		level   slog.Level
		want    string // in the message; "" for no message
	}{
		{1 << 20, 0, 0, ""},
		{1 << 20, 100_000, 0, ""},
		{20000, 0, slog.LevelInfo, "caps this node at about 19936 connections"},
		{20000, 10_000, 0, ""},
		{20000, 100_000, slog.LevelWarn, "max_connections is 100000 but the open-file limit (20000) allows about 19936"},
		{10, 5, slog.LevelWarn, "allows about 0"},
	} {
		level, msg := fileLimitAdvice(tc.limit, tc.maxConn)
		if tc.want == "" {
			if msg != "" {
				t.Errorf("limit %d, max %d: %q, want nothing", tc.limit, tc.maxConn, msg)
			}
			continue
		}
		if level != tc.level || !strings.Contains(msg, tc.want) {
			t.Errorf("limit %d, max %d: %v %q, want %v with %q", tc.limit, tc.maxConn, level, msg, tc.level, tc.want)
		}
	}
}
