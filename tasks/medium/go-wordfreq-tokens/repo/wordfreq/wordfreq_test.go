package wordfreq

import (
	"reflect"
	"testing"
)

func TestTopWordsFromTheBugReport(t *testing.T) {
	got := TopWords("Don't restart the server. The server's fine; THE SERVER is fine!", 3)
	want := []WordCount{{"fine", 2}, {"server", 2}, {"don't", 1}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("TopWords = %v, want %v", got, want)
	}
}

func TestTokenize(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"Hello, World", []string{"hello", "world"}},
		{"don't can't O'Brien", []string{"don't", "can't", "o'brien"}},
		{"it’s the user’s fault", []string{"it's", "the", "user's", "fault"}},
		{"'quoted' words' and 'more", []string{"quoted", "words", "and", "more"}},
		{"Café naïve Zürich ÉCOLE", []string{"café", "naïve", "zürich", "école"}},
		{"error 404 in v2 build", []string{"error", "404", "in", "v2", "build"}},
		{"well-known e-mail", []string{"well", "known", "e", "mail"}},
		{"rock'n'roll", []string{"rock'n'roll"}},
		{"  ...!!  ", nil},
		{"", nil},
		{"''", nil},
		{"ΑΘΗΝΑ Москва", []string{"αθηνα", "москва"}},
	}
	for _, c := range cases {
		got := Tokenize(c.in)
		if len(got) == 0 && len(c.want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Tokenize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestStopWordsAreCaseInsensitive(t *testing.T) {
	got := TopWords("The THE the tHe A An AND printer", -1)
	want := []WordCount{{"printer", 1}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("TopWords = %v, want %v", got, want)
	}
}

func TestTiesAndLimit(t *testing.T) {
	got := TopWords("b a c B C b d", 2)
	want := []WordCount{{"b", 3}, {"c", 2}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("TopWords = %v, want %v", got, want)
	}
	if got := TopWords("x y", 0); len(got) != 0 {
		t.Fatalf("n=0 gave %v", got)
	}
}
