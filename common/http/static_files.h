// StaticFiles: a fixed set of files served by exact URL path, e.g. the
// dashboard's page and Debian's dygraphs (/usr/share/javascript/dygraphs).
//
// Only registered URL paths are served, each mapped to one file or one
// embedded string; there is no directory lookup, so `..`, encoded slashes or
// symlinks in a request cannot reach anything else. Files are read when
// requested (a missing file is 404), with the content type from the
// extension and `X-Content-Type-Options: nosniff`.
//
// Thread safety: Add*() before Install(); the installed handlers are
// thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/http/router.h"

namespace gantry::http {

// "text/html; charset=utf-8" for ".html", ...; "application/octet-stream" otherwise.
std::string ContentTypeForPath(std::string_view path);

// Debian's libjs-dygraphs install folder.
inline constexpr const char* kDygraphsDir = "/usr/share/javascript/dygraphs";

class StaticFiles {
 public:
  // Serves `file_path` at `url_path` (absolute, no query).
  Status AddFile(const std::string& url_path, const std::string& file_path);
  // Serves `dir/<name>` at `url_prefix/<name>` for each plain file name
  // (no '/', not "." or "..").
  Status AddFiles(const std::string& url_prefix, const std::string& dir,
                  const std::vector<std::string>& names);
  // Serves `content` at `url_path` (content type from the path unless given).
  Status AddEmbedded(const std::string& url_path, std::string content, std::string content_type = "");
  // Registers one GET route per entry.
  Status Install(Router& router) const;

 private:
  struct Entry {
    std::string file_path;  // empty for embedded content
    std::string content;
    std::string content_type;
  };
  Status Check(const std::string& url_path) const;
  std::map<std::string, Entry> entries_;
};

}  // namespace gantry::http
