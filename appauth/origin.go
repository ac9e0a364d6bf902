package appauth

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// ValidCallback reports whether name is a JSONP callback as pusher-js
// names it, Pusher.auth_callbacks['N'] with N a number. Nothing else is
// ever written into a script: a callback such as "alert(1);//" would make
// the answer run the requester's code on the page that loads it.
func ValidCallback(name string) bool {
	n, ok := strings.CutPrefix(name, "Pusher.auth_callbacks['")
	if !ok {
		return false
	}
	n, ok = strings.CutSuffix(n, "']")
	return ok && len(n) <= 10 && allDigits(n)
}

// CSRFCookie returns an Options.CSRFToken that expects the value of the
// named cookie in the CSRF header (the double-submit pattern: a page of the
// app's own origin can read the cookie and send it back as a header; a page
// of another site can do neither).
func CSRFCookie(name string) func(r *http.Request) string {
	return func(r *http.Request) string {
		c, err := r.Cookie(name)
		if err != nil {
			return ""
		}
		return c.Value
	}
}

// parseOrigin checks an allowlist entry and returns it the way browsers
// send Origin: scheme://host[:port], lowercase, without a default port.
func parseOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errors.New("not an http or https origin")
	}
	if u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("an origin is scheme://host[:port] and nothing else")
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if port := u.Port(); (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		host = strings.TrimSuffix(host, ":"+port)
	}
	return scheme + "://" + host, nil
}

// requestOrigin is where the request says it comes from: its Origin, or,
// for the script loads that send none, the origin of its Referer; "" when
// it says neither.
func requestOrigin(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		if norm, err := parseOrigin(o); err == nil {
			return norm
		}
		return ""
	}
	ref, err := url.Parse(r.Header.Get("Referer"))
	if err != nil || ref.Host == "" {
		return ""
	}
	norm, err := parseOrigin(ref.Scheme + "://" + ref.Host)
	if err != nil {
		return ""
	}
	return norm
}

// sameOriginOrAllowed is the check of a JSONP request. A JSONP answer is a
// script, and a script can be loaded by any page: without this check, a
// page of another site could load the answer for its own socket and a
// victim's channel, with the victim's cookies, and read the signature.
//
// Browsers say where a request comes from in Sec-Fetch-Site, which pages
// cannot forge: same-origin (and none, a navigation typed by the user) is
// the app's own page. same-site is another port or a sibling subdomain,
// which may well be someone else's, so it is treated like cross-site: the
// request's origin must be on the allowlist. Without Sec-Fetch-Site (plain
// http to a host other than localhost, older browsers, non-browser
// clients), the request's origin must be the endpoint's own host or on the
// allowlist; a request that names no origin at all is refused.
func (a *Authorizer) sameOriginOrAllowed(r *http.Request) bool {
	from := requestOrigin(r)
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "same-site", "cross-site":
		return from != "" && a.origins[from]
	case "":
		if from == "" {
			return false
		}
		if a.origins[from] {
			return true
		}
		_, host, _ := strings.Cut(from, "://")
		return strings.EqualFold(host, r.Host)
	}
	return false
}
