#include "serving/model_slot.h"

namespace gantry::serving {

BatchFn SlotBatchFn(const ModelSlot<Servable>& slot) {
  return [&slot](const BatchInput& input) -> Result<BatchOutput> {
    std::shared_ptr<const Servable> model = slot.Get();  // held for the whole batch
    if (!model) return Status::Unavailable("no model loaded yet");
    auto out = model->Forward(input);
    if (!out.ok()) return out.status().WithContext("model version " + model->version());
    return BatchOutput{std::move(out).value(), model->version()};
  };
}

}  // namespace gantry::serving
