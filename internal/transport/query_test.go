package transport

import (
	"net/url"
	"strings"
	"testing"
)

func TestQueryGet(t *testing.T) {
	for _, tc := range []struct {
		query, key, want string
	}{
		{"protocol=7&client=js&version=8.4.0", "protocol", "7"},
		{"client=js&protocol=7", "protocol", "7"},
		{"protocol=7&protocol=5", "protocol", "7"},
		{"protocol", "protocol", ""},
		{"protocol=", "protocol", ""},
		{"proto=7", "protocol", ""},
		{"", "protocol", ""},
		{"protocol=%37", "protocol", "7"},
		{"proto%63ol=7", "protocol", "7"},
		{"a+b=c+d", "a b", "c d"},
		{"protocol=%zz&protocol=6", "protocol", "6"}, // a malformed value is skipped
		{"protocol=7;x&protocol=6", "protocol", "6"}, // so is a pair holding ';'
		{"&&protocol=7&", "protocol", "7"},
		{"=x", "", "x"},
		{strings.Repeat("a&", plainQueryMax) + "protocol=7", "protocol", ""}, // over net/url's limit
	} {
		if got := Query(tc.query).Get(tc.key); got != tc.want {
			t.Errorf("Query(%q).Get(%q) = %q, want %q", tc.query, tc.key, got, tc.want)
		}
		if v, _ := url.ParseQuery(tc.query); v.Get(tc.key) != tc.want {
			t.Errorf("case %q/%q disagrees with url.ParseQuery: %q", tc.query, tc.key, v.Get(tc.key))
		}
	}
}

func TestQueryGetAlloc(t *testing.T) {
	q := Query("client=js&version=8.4.0&protocol=7&flash=false")
	if n := testing.AllocsPerRun(100, func() { _ = q.Get("protocol") }); n != 0 {
		t.Errorf("Get allocates %v times, want 0", n)
	}
}

// FuzzQueryValue checks Get against url.ParseQuery, which it replaces.
func FuzzQueryValue(f *testing.F) {
	for _, s := range []string{"protocol=7&client=js", "a=1&a=2", "a%3d=b", "x=%zz&x=1", "k=v;w&k=2", "+=+", "=", "&"} {
		f.Add(s, "protocol")
		f.Add(s, "a")
	}
	f.Fuzz(func(t *testing.T, query, key string) {
		v, _ := url.ParseQuery(query)
		if got, want := Query(query).Get(key), v.Get(key); got != want {
			t.Fatalf("Query(%q).Get(%q) = %q, url.ParseQuery gives %q", query, key, got, want)
		}
	})
}
