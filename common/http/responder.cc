#include "common/http/responder.h"

#include <utility>

namespace gantry::http {

HttpResponder::HttpResponder(SendFn send) : state_(std::make_shared<State>(std::move(send))) {}

HttpResponder::State::~State() {
  if (sent.exchange(true) || !send) return;
  try {
    send(HttpResponse::Error(500, "the handler dropped the request without answering it"));
  } catch (...) {  // a destructor must not throw; the connection is closed by its owner
  }
}

void HttpResponder::Send(HttpResponse response) const {
  if (!state_ || state_->sent.exchange(true) || !state_->send) return;
  state_->send(std::move(response));
}

bool HttpResponder::sent() const { return state_ && state_->sent.load(); }

}  // namespace gantry::http
