#pragma once

namespace torch::optim {
class AdamW;
}

namespace masklab {

// One AdamW update of every parameter with a gradient, the same arithmetic
// as torch::optim::AdamW::step() (decoupled decay, bias correction, eps
// outside the square root) and the same state, so optimizer.pt, resume and
// the PyTorch reference are unchanged. A contiguous fp32 CPU parameter is
// updated in one pass over (p, g, m, v) instead of AdamW's nine tensor
// operations and two temporaries, each a pass over the whole tensor; any
// other parameter (CUDA, bf16, AMSGrad) goes through AdamW's own code.
void adamw_step(torch::optim::AdamW& optimizer);

}  // namespace masklab
