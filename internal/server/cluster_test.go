package server

import (
	"strings"
	"testing"
)

func TestRedactError(t *testing.T) {
	const u = "redis://herald:s3cret@10.0.0.1:6379/0"
	for _, msg := range []string{
		"invalid URL " + u,
		"NOAUTH wrong password s3cret",
		`parse "` + u + `": bad`,
	} {
		if got := redact(msg, u); strings.Contains(got, "s3cret") {
			t.Errorf("redact(%q) = %q", msg, got)
		}
	}
	if got := redact("dial redis://tok@h:1 failed", "redis://tok@h:1"); strings.Contains(got, "tok") {
		t.Errorf("a lone user name, which may be the password, shows: %q", got)
	}
	if got := redact("plain", "redis://h:1"); got != "plain" {
		t.Errorf("redact without secrets changed the message: %q", got)
	}
}
