//! `evaluate_generated` on a small scale (tap 64, 120 "generated" and 120 real images):
//! the per-class numbers equal an independent computation, the summary is consistent, the
//! reference cache is written and reused with the same result.

use cign_data::{Dataset, DatasetKind, Split};
use cign_metrics::reference::dataset_images;
use cign_metrics::{
    collect, evaluate_generated, frechet_distance, CollectOptions, EvalOptions, InceptionExtractor,
    KidOptions, PixelRange, Preprocess, Tap, TensorImages,
};
use tch::{Device, Kind, Tensor};

#[test]
fn evaluation_report_is_consistent_and_cached() {
    let dir = cign_data::default_data_dir(DatasetKind::Mnist);
    cign_data::fetch::ensure_dataset(DatasetKind::Mnist, &dir).expect("MNIST");
    let test = Dataset::load(DatasetKind::Mnist, Split::Test, &dir).unwrap();
    let ex = InceptionExtractor::from_default_weights(Device::Cpu).unwrap();

    // "Generated" images: test images 120..240 with noise, in [-1, 1], with their labels.
    let (all, all_labels) = dataset_images(&test, Some(240));
    tch::manual_seed(0);
    let gen = (all.narrow(0, 120, 120).to_kind(Kind::Float) / 127.5 - 1.0
        + Tensor::randn([120, 1, 28, 28], (Kind::Float, Device::Cpu)) * 0.2)
        .clamp(-1.0, 1.0);
    let labels = &all_labels[120..240];

    let cache = tempfile::tempdir().unwrap();
    let opts = EvalOptions {
        taps: vec![Tap::D64],
        real_limit: Some(120),
        cache_dir: Some(cache.path().to_path_buf()),
        kid: Some(KidOptions {
            subsets: 10,
            subset_size: 60,
            seed: 0,
        }),
        progress: false,
        ..Default::default()
    };
    let report = evaluate_generated(&ex, &gen, Some(labels), &test, &opts, None).unwrap();
    assert_eq!(report.n_generated, 120);
    assert_eq!(report.n_real, 120);
    let tap = &report.taps[0];
    assert_eq!(tap.dims, 64);
    let pc = tap.per_class.as_ref().unwrap();
    assert_eq!(pc.classes.len(), 10);
    assert!(pc.min <= pc.mean && pc.mean <= pc.max && pc.std >= 0.0);
    assert!(tap.fid > 0.0 && tap.kid.unwrap().mean.is_finite());

    // Independent computation of class 3: its images only, through collect + frechet.
    let pre = Preprocess::default();
    let copts = CollectOptions {
        progress: false,
        ..Default::default()
    };
    let pick = |labels: &[u8]| {
        let idx: Vec<i64> = (0..labels.len() as i64)
            .filter(|&i| labels[i as usize] == 3)
            .collect();
        Tensor::from_slice(&idx)
    };
    let real3 = all
        .narrow(0, 0, 120)
        .index_select(0, &pick(&all_labels[..120]));
    let gen3 = gen.index_select(0, &pick(labels));
    let real_src = TensorImages::new(&real3, PixelRange::Unit, pre).unwrap();
    let gen_src = TensorImages::new(&gen3, PixelRange::Signed, pre).unwrap();
    let r3 = collect(&ex, &real_src, None, &[Tap::D64], &copts).unwrap();
    let g3 = collect(&ex, &gen_src, None, &[Tap::D64], &copts).unwrap();
    let c3 = frechet_distance(&g3.stats(Tap::D64).unwrap(), &r3.stats(Tap::D64).unwrap()).unwrap();
    let got3 = pc.classes.iter().find(|c| c.class == 3).unwrap();
    assert_eq!(got3.n_generated as i64, gen3.size()[0]);
    // Other batches, so features differ by round-off (batch invariance is 1e-5).
    assert!((c3 - got3.fid).abs() <= 1e-4 * c3, "{c3} vs {}", got3.fid);
    assert!((pc.all_class - tap.fid).abs() <= 1e-12 * tap.fid);

    // The reference statistics were cached (all + 10 classes) and give the same result.
    let files = std::fs::read_dir(cache.path()).unwrap().count();
    assert_eq!(files, 11, "cache files");
    let opts2 = EvalOptions { kid: None, ..opts };
    let again = evaluate_generated(&ex, &gen, Some(labels), &test, &opts2, None).unwrap();
    assert!((again.taps[0].fid - tap.fid).abs() <= 1e-9 * tap.fid);
    assert!((again.taps[0].per_class.as_ref().unwrap().mean - pc.mean).abs() <= 1e-9 * pc.mean);
    serde_json::to_string(&again).unwrap();
}
