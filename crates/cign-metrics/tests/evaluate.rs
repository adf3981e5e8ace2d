//! `evaluate_generated` on a small scale (tap 64, 120 "generated" and 120 real images):
//! the per-class numbers equal an independent computation, the summary is consistent, the
//! reference cache is written and reused with the same result. Precision, recall, density
//! and coverage (tap 192 to keep it quick, 100 "generated" and 150 real images): all-class and
//! per-class values equal the definitions evaluated literally on the same features, and the
//! cached real features give the same values. bfloat16 features: reported, and cached apart
//! from float32 ones.

use cign_data::{Dataset, DatasetKind, Split};
use cign_metrics::reference::dataset_images;
use cign_metrics::{
    check_evaluation, collect, evaluate_generated, frechet_distance, CollectOptions, EvalOptions,
    InceptionExtractor, KidOptions, PixelRange, Prdc, PrdcOptions, Precision, Preprocess, Tap,
    TensorImages,
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
    // All + 10 classes, and the features (KID asked for them).
    let files = std::fs::read_dir(cache.path()).unwrap().count();
    assert_eq!(files, 12, "cache files");
    let opts2 = EvalOptions { kid: None, ..opts };
    let again = evaluate_generated(&ex, &gen, Some(labels), &test, &opts2, None).unwrap();
    assert!((again.taps[0].fid - tap.fid).abs() <= 1e-9 * tap.fid);
    assert!((again.taps[0].per_class.as_ref().unwrap().mean - pc.mean).abs() <= 1e-9 * pc.mean);
    serde_json::to_string(&again).unwrap();
}

/// The definitions evaluated literally (all distances, sorted rows for the radii, open balls)
/// on `[n, d]` feature tensors.
fn brute_force(gen: &Tensor, real: &Tensor, k: usize) -> Prdc {
    let rows = |t: &Tensor| -> Vec<Vec<f64>> {
        let t = t.to_kind(Kind::Double);
        (0..t.size()[0])
            .map(|i| Vec::<f64>::try_from(t.get(i)).unwrap())
            .collect()
    };
    let (g, r) = (rows(gen), rows(real));
    let dist = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            .sqrt()
    };
    let radii = |s: &[Vec<f64>]| -> Vec<f64> {
        s.iter()
            .map(|a| {
                let mut d: Vec<f64> = s.iter().map(|b| dist(a, b)).collect();
                d.sort_by(|x, y| x.partial_cmp(y).unwrap());
                d[k]
            })
            .collect()
    };
    let (rr, rg) = (radii(&r), radii(&g));
    let (n, m) = (g.len(), r.len());
    let inside = |j: usize, i: usize, radius: f64| dist(&g[j], &r[i]) < radius;
    let precise = (0..n)
        .filter(|&j| (0..m).any(|i| inside(j, i, rr[i])))
        .count();
    let in_balls: usize = (0..n)
        .map(|j| (0..m).filter(|&i| inside(j, i, rr[i])).count())
        .sum();
    let recalled = (0..m)
        .filter(|&i| (0..n).any(|j| inside(j, i, rg[j])))
        .count();
    let covered = (0..m)
        .filter(|&i| (0..n).any(|j| inside(j, i, rr[i])))
        .count();
    Prdc {
        precision: precise as f64 / n as f64,
        recall: recalled as f64 / m as f64,
        density: (1.0 / k as f64) * (in_balls as f64 / n as f64),
        coverage: covered as f64 / m as f64,
    }
}

#[test]
fn precision_recall_density_coverage_all_and_per_class() {
    let dir = cign_data::default_data_dir(DatasetKind::Mnist);
    cign_data::fetch::ensure_dataset(DatasetKind::Mnist, &dir).expect("MNIST");
    let test = Dataset::load(DatasetKind::Mnist, Split::Test, &dir).unwrap();
    let ex = InceptionExtractor::from_default_weights(Device::Cpu).unwrap();

    // "Generated": test images 200..300 with noise (at least 4 per class, the k + 2 that k = 2
    // needs, as prdc), against the first 150 test images (at least 6 per class).
    let (all, all_labels) = dataset_images(&test, Some(300));
    tch::manual_seed(1);
    let gen = (all.narrow(0, 200, 100).to_kind(Kind::Float) / 127.5 - 1.0
        + Tensor::randn([100, 1, 28, 28], (Kind::Float, Device::Cpu)) * 0.3)
        .clamp(-1.0, 1.0);
    let labels = &all_labels[200..300];
    let real_labels = &all_labels[..150];
    let k = 2;
    let cache = tempfile::tempdir().unwrap();
    let opts = EvalOptions {
        taps: vec![Tap::D64],
        real_limit: Some(150),
        cache_dir: Some(cache.path().to_path_buf()),
        prdc: Some(PrdcOptions {
            nearest_k: k,
            ..PrdcOptions::default()
        }),
        prdc_tap: Tap::D192,
        progress: false,
        ..Default::default()
    };
    let report = evaluate_generated(&ex, &gen, Some(labels), &test, &opts, None).unwrap();
    // 192 was collected for PRDC but only the requested tap is reported.
    assert_eq!(report.taps.len(), 1);
    assert_eq!(report.taps[0].dims, 64);
    let pr = report.prdc.as_ref().expect("prdc report");
    assert_eq!((pr.dims, pr.nearest_k), (192, k));

    // The same features, collected in the same batches, and the definitions.
    let copts = CollectOptions {
        keep_features: true,
        progress: false,
        ..Default::default()
    };
    let pre = Preprocess::default();
    let features = |images: &Tensor, range| {
        let src = TensorImages::new(images, range, pre).unwrap();
        let c = collect(&ex, &src, None, &[Tap::D192], &copts).unwrap();
        c.tap(Tap::D192)
            .unwrap()
            .features
            .as_ref()
            .unwrap()
            .shallow_clone()
    };
    let fg = features(&gen, PixelRange::Signed);
    let fr = features(&all.narrow(0, 0, 150), PixelRange::Unit);
    let same = |a: &Prdc, b: &Prdc, what: &str| {
        for (x, y) in [
            (a.precision, b.precision),
            (a.recall, b.recall),
            (a.density, b.density),
            (a.coverage, b.coverage),
        ] {
            assert!((x - y).abs() <= 1e-12, "{what}: {a:?} vs {b:?}");
        }
    };
    same(&pr.all_class, &brute_force(&fg, &fr, k), "all classes");
    let pc = pr.per_class.as_ref().expect("per class");
    assert_eq!(pc.classes.len(), 10);
    let pick = |l: &[u8], c: u8| {
        let idx: Vec<i64> = (0..l.len() as i64)
            .filter(|&i| l[i as usize] == c)
            .collect();
        Tensor::from_slice(&idx)
    };
    let mut mean_precision = 0.0;
    for class in &pc.classes {
        let (g, r) = (
            fg.index_select(0, &pick(labels, class.class)),
            fr.index_select(0, &pick(real_labels, class.class)),
        );
        assert_eq!(class.n_generated as i64, g.size()[0]);
        assert_eq!(class.n_real as i64, r.size()[0]);
        same(
            &class.metrics,
            &brute_force(&g, &r, k),
            &format!("class {}", class.class),
        );
        mean_precision += class.metrics.precision / 10.0;
    }
    assert!((pc.mean.precision - mean_precision).abs() <= 1e-12);

    // The real features were cached (taps 64 and 192); read back, they give the same values.
    let cached = std::fs::read_dir(cache.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with("-features.npy")
        })
        .count();
    assert_eq!(cached, 2);
    let again = evaluate_generated(&ex, &gen, Some(labels), &test, &opts, None).unwrap();
    let pr2 = again.prdc.as_ref().unwrap();
    same(&pr2.all_class, &pr.all_class, "from the cache");
    assert_eq!(pr2.per_class, pr.per_class);
    let json = serde_json::to_value(&again).unwrap();
    assert_eq!(
        json["prdc"]["per_class"]["classes"][0]["precision"],
        pc.classes[0].metrics.precision
    );

    // Too few images of a class for k: an error before the network, naming side and class.
    let k5 = EvalOptions {
        prdc: Some(PrdcOptions {
            nearest_k: 5,
            ..PrdcOptions::default()
        }),
        ..opts.clone()
    };
    let e = check_evaluation(100, Some(labels), &test, &k5)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("generated samples of class") && e.contains("at least 7"),
        "{e}"
    );
    let e = evaluate_generated(&ex, &gen, Some(labels), &test, &k5, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("at least 7"), "{e}");
}

/// `EvalOptions::precision`: the report says which precision was used, bfloat16 moves FID
/// (but not far), and the cached reference statistics of the two precisions are kept apart
/// (`-bf16` in the key), so that bfloat16 ones are never read back as float32 ones.
#[test]
fn precisions_have_their_own_reference_cache() {
    let dir = cign_data::default_data_dir(DatasetKind::Mnist);
    cign_data::fetch::ensure_dataset(DatasetKind::Mnist, &dir).expect("MNIST");
    let test = Dataset::load(DatasetKind::Mnist, Split::Test, &dir).unwrap();
    let ex = InceptionExtractor::from_default_weights(Device::Cpu).unwrap();
    // (the reference statistics are kept per class too: every class needs two real images)
    let (all, _) = dataset_images(&test, Some(130));
    let gen = all.narrow(0, 100, 30).to_kind(Kind::Float) / 127.5 - 1.0;
    let cache = tempfile::tempdir().unwrap();
    let names = || {
        let mut v: Vec<String> = std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let opts = |precision| EvalOptions {
        taps: vec![Tap::D64],
        real_limit: Some(100),
        cache_dir: Some(cache.path().to_path_buf()),
        progress: false,
        precision,
        ..Default::default()
    };
    let bf16 = evaluate_generated(&ex, &gen, None, &test, &opts(Precision::Bf16), None).unwrap();
    assert_eq!(bf16.inception_precision, Precision::Bf16);
    // all images and the 10 classes, all under the bfloat16 key
    let files = names();
    assert_eq!(files.len(), 11, "{files:?}");
    assert!(
        files.iter().all(|f| f.contains("-d64-q1-bf16-")),
        "{files:?}"
    );
    assert!(
        files.iter().any(|f| f.ends_with("-d64-q1-bf16-all.npz")),
        "{files:?}"
    );
    let json = serde_json::to_value(&bf16).unwrap();
    assert_eq!(json["inception_precision"], "bf16");

    // float32 does not read the bfloat16 entry: it computes and caches its own, under the
    // key it always had.
    let fp32 = evaluate_generated(&ex, &gen, None, &test, &opts(Precision::Fp32), None).unwrap();
    assert_eq!(fp32.inception_precision, Precision::Fp32);
    let files = names();
    assert_eq!(files.len(), 22, "{files:?}");
    let plain: Vec<&String> = files.iter().filter(|f| !f.contains("bf16")).collect();
    assert_eq!(plain.len(), 11, "{files:?}");
    assert!(
        plain.iter().any(|f| f.ends_with("-d64-q1-all.npz")),
        "{files:?}"
    );
    let (a, b) = (fp32.taps[0].fid, bf16.taps[0].fid);
    assert!(a != b, "bf16 and fp32 FIDs are equal ({a}): bf16 not used?");
    assert!((a - b).abs() <= 2e-2 * a, "fp32 {a} vs bf16 {b}");

    // The bfloat16 entry is read back by bfloat16 (same FID, same features: the generated
    // side is recomputed the same way).
    let again = evaluate_generated(&ex, &gen, None, &test, &opts(Precision::Bf16), None).unwrap();
    assert_eq!(names().len(), 22);
    assert!(
        (again.taps[0].fid - b).abs() <= 1e-12 * b,
        "{} vs {b}",
        again.taps[0].fid
    );
}

/// With a classifier, images it cannot take are an error before the Inception network runs
/// (the classifier used to fail only after every feature had been computed).
#[test]
fn images_the_classifier_cannot_take_are_refused_first() {
    let dir = cign_data::default_data_dir(DatasetKind::Mnist);
    cign_data::fetch::ensure_dataset(DatasetKind::Mnist, &dir).expect("MNIST");
    let test = Dataset::load(DatasetKind::Mnist, Split::Test, &dir).unwrap();
    let ex = InceptionExtractor::from_default_weights(Device::Cpu).unwrap();
    let classifier = cign_metrics::ConditionalClassifier::new(Device::Cpu).unwrap();
    let labels: Vec<u8> = (0..20).map(|i| (i % 10) as u8).collect();
    // Reference statistics would be written here if the network ran.
    let cache = tempfile::tempdir().unwrap();
    let opts = EvalOptions {
        taps: vec![Tap::D64],
        real_limit: Some(200),
        cache_dir: Some(cache.path().to_path_buf()),
        progress: false,
        ..Default::default()
    };
    for shape in [[20, 1, 32, 32], [20, 3, 28, 28]] {
        let gen = Tensor::zeros(shape, (Kind::Float, Device::Cpu));
        let err = evaluate_generated(&ex, &gen, Some(&labels), &test, &opts, Some(&classifier))
            .unwrap_err();
        assert!(
            matches!(err, cign_metrics::MetricsError::InvalidInput { .. }),
            "{shape:?}: {err:?}"
        );
        assert!(err.to_string().contains("28, 28"), "{err}");
        let written = std::fs::read_dir(cache.path()).unwrap().count();
        assert_eq!(written, 0, "the network ran before the shape check");
    }
}

// An unconditional evaluation needs no per-class statistics, so real classes with a single
// image (the first 10 test images have labels 7 2 1 0 4 1 4 9 5 9: classes 0, 2, 5 and 7
// once each) are no obstacle: its FID equals the one of collect + frechet on the same
// images, and the cache holds the all-image statistics and those of the classes with two
// images or more (1, 4, 9) only.
#[test]
fn unconditional_evaluation_takes_classes_of_one_image() {
    let dir = cign_data::default_data_dir(DatasetKind::Mnist);
    cign_data::fetch::ensure_dataset(DatasetKind::Mnist, &dir).expect("MNIST");
    let test = Dataset::load(DatasetKind::Mnist, Split::Test, &dir).unwrap();
    let ex = InceptionExtractor::from_default_weights(Device::Cpu).unwrap();
    let (all, all_labels) = dataset_images(&test, Some(20));
    assert_eq!(&all_labels[..10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    let gen = all.narrow(0, 10, 10).to_kind(Kind::Float) / 127.5 - 1.0;
    let cache = tempfile::tempdir().unwrap();
    let opts = EvalOptions {
        taps: vec![Tap::D64],
        real_limit: Some(10),
        cache_dir: Some(cache.path().to_path_buf()),
        progress: false,
        ..Default::default()
    };
    check_evaluation(10, None, &test, &opts).unwrap();
    let report = evaluate_generated(&ex, &gen, None, &test, &opts, None).unwrap();
    assert!(report.taps[0].per_class.is_none());

    let copts = CollectOptions {
        progress: false,
        ..Default::default()
    };
    let pre = Preprocess::default();
    let real_src = TensorImages::new(&all.narrow(0, 0, 10), PixelRange::Unit, pre).unwrap();
    let gen_src = TensorImages::new(&gen, PixelRange::Signed, pre).unwrap();
    let r = collect(&ex, &real_src, None, &[Tap::D64], &copts).unwrap();
    let g = collect(&ex, &gen_src, None, &[Tap::D64], &copts).unwrap();
    let want = frechet_distance(&g.stats(Tap::D64).unwrap(), &r.stats(Tap::D64).unwrap()).unwrap();
    let got = report.taps[0].fid;
    assert!((want - got).abs() <= 1e-4 * want, "{want} vs {got}");

    let mut files: Vec<String> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let suffixes: Vec<&str> = files.iter().map(|f| &f[f.rfind('-').unwrap()..]).collect();
    assert_eq!(
        suffixes,
        ["-all.npz", "-c1.npz", "-c4.npz", "-c9.npz"],
        "{files:?}"
    );
    // Read back from the cache: the same FID.
    let again = evaluate_generated(&ex, &gen, None, &test, &opts, None).unwrap();
    assert_eq!(again.taps[0].fid, got);
}
