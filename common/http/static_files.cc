#include "common/http/static_files.h"

#include <memory>

#include "common/fs.h"

namespace gantry::http {
namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::string ContentTypeForPath(std::string_view path) {
  struct Type {
    const char* ext;
    const char* type;
  };
  static constexpr Type kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".htm", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"},
  };
  for (const Type& t : kTypes) {
    if (EndsWith(path, t.ext)) return t.type;
  }
  return "application/octet-stream";
}

Status StaticFiles::Check(const std::string& url_path) const {
  if (url_path.empty() || url_path[0] != '/' || url_path.find('?') != std::string::npos ||
      url_path.find("/../") != std::string::npos || EndsWith(url_path, "/..") ||
      url_path.find('{') != std::string::npos) {
    return Status::InvalidArgument("static file URL must be a plain absolute path: " + url_path);
  }
  if (entries_.count(url_path) != 0) return Status::AlreadyExists("static file registered twice: " + url_path);
  return Status::Ok();
}

Status StaticFiles::AddFile(const std::string& url_path, const std::string& file_path) {
  GANTRY_RETURN_IF_ERROR(Check(url_path));
  entries_[url_path] = Entry{file_path, "", ContentTypeForPath(file_path)};
  return Status::Ok();
}

Status StaticFiles::AddFiles(const std::string& url_prefix, const std::string& dir,
                             const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
      return Status::InvalidArgument("static file name must be a plain file name: " + name);
    }
    std::string prefix = url_prefix;
    if (prefix.empty() || prefix.back() != '/') prefix += '/';
    GANTRY_RETURN_IF_ERROR(AddFile(prefix + name, dir + "/" + name));
  }
  return Status::Ok();
}

Status StaticFiles::AddEmbedded(const std::string& url_path, std::string content, std::string content_type) {
  GANTRY_RETURN_IF_ERROR(Check(url_path));
  if (content_type.empty()) content_type = ContentTypeForPath(url_path);
  entries_[url_path] = Entry{"", std::move(content), std::move(content_type)};
  return Status::Ok();
}

Status StaticFiles::Install(Router& router) const {
  for (const auto& [url, entry] : entries_) {
    auto e = std::make_shared<const Entry>(entry);
    GANTRY_RETURN_IF_ERROR(router.Add("GET", url, [e](const HttpRequest&) {
      HttpResponse r;
      r.content_type = e->content_type;
      r.headers.emplace_back("X-Content-Type-Options", "nosniff");
      if (e->file_path.empty()) {
        r.body = e->content;
        return r;
      }
      auto data = ReadFile(e->file_path);
      if (!data.ok()) return HttpResponse::Error(404, "file not available");
      r.body = std::move(data).value();
      return r;
    }));
  }
  return Status::Ok();
}

}  // namespace gantry::http
