// Package semver parses and orders Semantic Versioning 2.0.0 versions
// (https://semver.org) for the package index.
package semver

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a parsed semantic version.
type Version struct {
	Major, Minor, Patch uint64
	Pre                 string // pre-release, without the leading '-'
	Build               string // build metadata, without the leading '+'
}

// Parse parses a version such as "1.2.3", "1.2.3-rc.1" or "1.2.3+build.7".
func Parse(s string) (Version, error) {
	var v Version
	rest := s
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		rest, v.Build = rest[:i], rest[i+1:]
	}
	if i := strings.IndexByte(rest, '-'); i >= 0 {
		rest, v.Pre = rest[:i], rest[i+1:]
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return Version{}, fmt.Errorf("semver: %q: want MAJOR.MINOR.PATCH", s)
	}
	nums := make([]uint64, 3)
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return Version{}, fmt.Errorf("semver: %q: bad number %q", s, p)
		}
		nums[i] = n
	}
	v.Major, v.Minor, v.Patch = nums[0], nums[1], nums[2]
	return v, nil
}

// String formats the version back to its canonical text.
func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if v.Pre != "" {
		s += "-" + v.Pre
	}
	if v.Build != "" {
		s += "+" + v.Build
	}
	return s
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Compare returns -1, 0 or +1 as a has lower, equal or higher precedence
// than b.
func Compare(a, b Version) int {
	if c := cmpUint(a.Major, b.Major); c != 0 {
		return c
	}
	if c := cmpUint(a.Minor, b.Minor); c != 0 {
		return c
	}
	if c := cmpUint(a.Patch, b.Patch); c != 0 {
		return c
	}
	if c := strings.Compare(a.Pre, b.Pre); c != 0 {
		return c
	}
	return strings.Compare(a.Build, b.Build)
}

// Latest returns the highest-precedence version of the list; versions
// that do not parse are an error.
func Latest(versions []string) (string, error) {
	if len(versions) == 0 {
		return "", fmt.Errorf("semver: no versions")
	}
	best, err := Parse(versions[0])
	if err != nil {
		return "", err
	}
	bestText := versions[0]
	for _, s := range versions[1:] {
		v, err := Parse(s)
		if err != nil {
			return "", err
		}
		if Compare(v, best) > 0 {
			best, bestText = v, s
		}
	}
	return bestText, nil
}
