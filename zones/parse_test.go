package zones

import "testing/fstest"

// parseText loads a zone from text, as file name in an otherwise empty
// file system (so an $INCLUDE finds nothing).
func parseText(origin, name, text string) (*Zone, error) {
	return Load(Source{Origin: origin, FS: fstest.MapFS{name: {Data: []byte(text)}}, Path: name})
}
