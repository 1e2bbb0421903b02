//! Runtime choice of instruction set for the per-pixel kernels. The
//! kernels are plain Rust written so the compiler vectorises them; on
//! x86-64 each is compiled twice, for the baseline (SSE2: runs on every
//! PC, which is why the build does not use `-C target-cpu=native`) and for
//! AVX2 (twice the lanes), and the AVX2 copy runs where the CPU has it.

/// The instruction set the kernels run on. Only `Isa::detect` (and the
/// baseline, which runs everywhere) makes one, so `avx2` is true only on a
/// CPU that has AVX2.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Isa {
    avx2: bool,
}

impl Isa {
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        let avx2 = std::arch::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        let avx2 = false;
        Self { avx2 }
    }

    /// The baseline kernels even where AVX2 is present (tests compare the
    /// two copies).
    #[cfg(test)]
    pub(crate) fn baseline() -> Self {
        Self { avx2: false }
    }

    pub(crate) fn is_avx2(self) -> bool {
        self.avx2
    }

    pub(crate) fn name(self) -> &'static str {
        if self.avx2 {
            "avx2"
        } else {
            "baseline"
        }
    }
}

/// Defines `$name(isa, args)`, which runs `$body(args)` compiled for AVX2
/// where `isa` says the CPU has it, else compiled for the baseline.
macro_rules! dispatch {
    ($(#[$doc:meta])* $name:ident => $body:ident ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        $(#[$doc])*
        // A row kernel takes its rows and parameters one by one, plus `isa`.
        #[allow(clippy::too_many_arguments)]
        pub(crate) fn $name(isa: $crate::pipeline::simd::Isa, $($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            if isa.is_avx2() {
                #[target_feature(enable = "avx2")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                // SAFETY: `avx2` is compiled with AVX2 instructions and may
                // only run on a CPU that has them; `isa.is_avx2()` is true
                // only when `Isa::detect` found AVX2 on this CPU. The body is
                // safe code (bounds-checked slices), so that is the only
                // condition.
                return unsafe { avx2($($arg),*) };
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _baseline_only = isa;
            $body($($arg),*)
        }
    };
}

pub(crate) use dispatch;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avx2_is_chosen_exactly_when_the_cpu_has_it() {
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            Isa::detect().is_avx2(),
            std::arch::is_x86_feature_detected!("avx2")
        );
        assert!(!Isa::baseline().is_avx2());
    }
}
