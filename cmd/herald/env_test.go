package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestWarnUnknownEnv: a misspelt HERALD_* variable is named in a warning,
// with the setting it resembles, and its value (maybe a secret) is not.
func TestWarnUnknownEnv(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	warnUnknownEnv(log, []string{"HERALD_APP_SECRT=hunter2", "HERALD_APP_ID=1", "HOME=/root", "HERALD_NOPE=x"})
	out := buf.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want two warnings, got:\n%s", out)
	}
	if !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "name=HERALD_APP_SECRT") ||
		!strings.Contains(lines[0], "did_you_mean=HERALD_APP_SECRET") {
		t.Errorf("first warning: %s", lines[0])
	}
	if !strings.Contains(lines[1], "name=HERALD_NOPE") || strings.Contains(lines[1], "did_you_mean") {
		t.Errorf("second warning: %s", lines[1])
	}
	if strings.Contains(out, "hunter2") {
		t.Errorf("a value reached the log:\n%s", out)
	}
}
