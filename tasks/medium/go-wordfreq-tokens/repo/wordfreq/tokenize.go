package wordfreq

import "strings"

// Tokenize splits text into the words counted by the panel.
func Tokenize(text string) []string {
	return strings.FieldsFunc(text, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
}
