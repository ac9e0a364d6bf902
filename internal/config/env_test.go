package config

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestEnvNamesAreTheOnesRead: every HERALD_* name the package's code
// mentions is in envNames, and every name there is mentioned, so a new
// variable cannot be warned about as unknown, nor a removed one kept.
func TestEnvNamesAreTheOnesRead(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`"(HERALD_[A-Z0-9_]+)"`)
	var mentioned []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "env.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			mentioned = append(mentioned, m[1])
		}
	}
	slices.Sort(mentioned)
	mentioned = slices.Compact(mentioned)
	if len(mentioned) < 30 {
		t.Fatalf("found only %d names in the code: %v", len(mentioned), mentioned)
	}
	if !slices.Equal(mentioned, envNames) {
		t.Fatalf("the code reads\n%v\nenvNames lists\n%v", mentioned, envNames)
	}
}

func TestUnknownEnv(t *testing.T) {
	got := UnknownEnv([]string{
		"PATH=/bin",
		"HERALD_APP_SECRET=s",    // known
		"HERALD_APP_SECRT=s",     // one letter missing
		"HERALD_REDIS_ULR=redis", // two letters swapped
		"HERALD_SOMETHING_ELSE=1",
		"HERALD_=x",
		"herald_app_id=1", // not ours: variables are case-sensitive
	})
	want := []UnknownVar{
		{"HERALD_APP_SECRT", "HERALD_APP_SECRET"},
		{"HERALD_REDIS_ULR", "HERALD_REDIS_URL"},
		{"HERALD_SOMETHING_ELSE", ""},
		{"HERALD_", ""},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b  string
		limit int
		want  int
	}{
		{"", "", 3, 0},
		{"abc", "abc", 3, 0},
		{"abc", "abd", 3, 1},
		{"abc", "acb", 3, 2},
		{"abc", "", 3, 3},
		{"kitten", "sitting", 5, 3},
		{"kitten", "sitting", 3, 3},
		{"a", "abcdef", 3, 3},
	} {
		if got := editDistance(tc.a, tc.b, tc.limit); got != tc.want {
			t.Errorf("editDistance(%q, %q, %d) = %d, want %d", tc.a, tc.b, tc.limit, got, tc.want)
		}
	}
}
