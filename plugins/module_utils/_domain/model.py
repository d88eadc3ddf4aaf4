# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Phyllome VM model: domain XML built from the model options.

One builder per option group of options.MODEL_GROUPS, called in the
table's order. Input is the resolved model (options.resolve_model) and
a HostContext (what the host's domain capabilities offer); output is an lxml
element. Nothing here talks to libvirt.
"""

from __future__ import annotations

from ansible_collections.phyllome.os.plugins.module_utils._common.device_ids import parse_pci_address, parse_usb_address
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput
from ansible_collections.phyllome.os.plugins.module_utils._domain.compare import (
    DEVICE_ORDER,
    DOMAIN_ORDER,
    overlay,
    sort_children,
)
from ansible_collections.phyllome.os.plugins.module_utils._domain.options import MODEL_GROUPS
from ansible_collections.phyllome.os.plugins.module_utils._domain.xml import (
    new_element,
    parse,
    sub,
)

# Hyper-V enlightenments of the Windows model (Phyllome OS's list): name -> extra attributes.
HYPERV_ENLIGHTENMENTS = (
    ('relaxed', {}),
    ('vapic', {}),
    ('spinlocks', {'retries': '4096'}),
    ('vpindex', {}),
    ('runtime', {}),
    ('synic', {}),
    ('stimer', {}),
    ('reset', {}),
    ('frequencies', {}),
    ('reenlightenment', {}),
    ('tlbflush', {}),
)


class HostContext:
    """What the builder needs from the host, read from its domain capabilities.

    domain_type: 'kvm' or 'qemu' (TCG); 'test' on libvirt's test driver.
    firmware: the os firmware values offered (e.g. {'efi'}), None when unknown.
    secure_boot: whether a Secure Boot loader is offered, None when unknown.
    tpm_emulator: whether the emulator TPM backend (swtpm) is offered, None when unknown.
    """

    def __init__(self, domain_type='kvm', arch='x86_64', firmware=None, secure_boot=None, tpm_emulator=None):
        self.domain_type = domain_type
        self.arch = arch
        self.firmware = firmware
        self.secure_boot = secure_boot
        self.tpm_emulator = tpm_emulator

    def __repr__(self):
        return 'HostContext(%r)' % self.__dict__


def build_domain(name, model, host):
    """The domain XML of the resolved `model` named `name` for `host`."""
    domain = new_element('domain', {'type': host.domain_type})
    sub(domain, 'name', text=name)
    sub(domain, 'devices')
    for group in MODEL_GROUPS:
        BUILDERS[group.name](domain, model, host)
    sort_children(domain, DOMAIN_ORDER)
    sort_children(domain.find('devices'), DEVICE_ORDER)
    return domain


def _devices(domain):
    return domain.find('devices')


# --- one builder per option group ------------------------------------------

def _platform(domain, model, host):
    family = model['os']
    features = sub(domain, 'features')
    sub(features, 'acpi')
    sub(features, 'apic')
    # Hyper-V enlightenments are a KVM feature: QEMU's TCG refuses them.
    if family == 'windows' and host.domain_type == 'kvm':
        hyperv = sub(features, 'hyperv', {'mode': 'custom'})
        for feature, extra in HYPERV_ENLIGHTENMENTS:
            attrib = {'state': 'on'}
            attrib.update(extra)
            elem = sub(hyperv, feature, attrib)
            if feature == 'stimer':
                sub(elem, 'direct', {'state': 'on'})
    clock = sub(domain, 'clock', {'offset': 'localtime' if family == 'windows' else 'utc'})
    sub(clock, 'timer', {'name': 'rtc', 'tickpolicy': 'catchup'})
    sub(clock, 'timer', {'name': 'pit', 'tickpolicy': 'delay'})
    sub(clock, 'timer', {'name': 'hpet', 'present': 'no'})
    if family == 'windows':
        sub(clock, 'timer', {'name': 'hypervclock', 'present': 'yes'})
    elif family == 'linux':
        sub(clock, 'timer', {'name': 'kvmclock', 'present': 'yes'})
    sub(domain, 'on_poweroff', text='destroy')
    sub(domain, 'on_reboot', text='restart')
    sub(domain, 'on_crash', text='destroy')
    pm = sub(domain, 'pm')
    sub(pm, 'suspend-to-mem', {'enabled': 'no'})
    sub(pm, 'suspend-to-disk', {'enabled': 'no'})


def _memory(domain, model, _host):
    sub(domain, 'memory', {'unit': 'KiB'}, model.get('max_memory', model['memory']) // 1024)
    sub(domain, 'currentMemory', {'unit': 'KiB'}, model['memory'] // 1024)


def _cpu(domain, model, _host):
    cpu_values = model['cpu']
    most = model.get('max_vcpus', model['vcpus'])
    sub(domain, 'vcpu', {'current': model['vcpus'] if most > model['vcpus'] else None}, most)
    domain.append(cpu_element(cpu_values))


def cpu_element(cpu):
    """<cpu> of a CPU as data: mode, and for a custom one match, model, fallback, vendor; topology; features.

    The shape of model.cpu and of phyllome.os.cpu_baseline's `cpu`; a CPU
    without a mode is a custom one (exact match, fallback forbidden).
    """
    mode = cpu.get('mode') or 'custom'
    custom = mode == 'custom'
    elem = new_element('cpu', {'mode': mode, 'match': (cpu.get('match') or 'exact') if custom else None})
    if custom:
        sub(elem, 'model', {'fallback': cpu.get('fallback') or 'forbid'}, cpu['model'])
        if cpu.get('vendor'):
            sub(elem, 'vendor', text=cpu['vendor'])
    if cpu.get('sockets'):
        sub(elem, 'topology', {'sockets': cpu['sockets'], 'cores': cpu['cores'], 'threads': cpu['threads']})
    for feature in cpu.get('features') or []:
        sub(elem, 'feature', {'policy': feature.get('policy') or 'require', 'name': feature['name']})
    return elem


def _firmware(domain, model, host):
    efi = model['firmware'] == 'efi'
    if efi and host.firmware is not None and 'efi' not in host.firmware:
        raise InvalidInput('this host offers no UEFI firmware for machine %s (install edk2-ovmf, or ovmf on Debian),'
                           ' or use firmware: bios' % model['machine'])
    if model['secure_boot'] and host.secure_boot is False:
        raise InvalidInput('this host offers no Secure Boot firmware (install edk2-ovmf with its secboot images)')
    os_elem = sub(domain, 'os', {'firmware': 'efi' if efi else None})
    sub(os_elem, 'type', {'arch': host.arch, 'machine': model['machine']}, 'hvm')
    if efi:
        # Chosen by libvirt's firmware auto-selection from these features,
        # never by a hard-coded path: hosts ship their firmware in different places.
        firmware = sub(os_elem, 'firmware')
        state = 'yes' if model['secure_boot'] else 'no'
        sub(firmware, 'feature', {'enabled': state, 'name': 'enrolled-keys'})
        sub(firmware, 'feature', {'enabled': state, 'name': 'secure-boot'})
    if model['secure_boot']:
        # Secure Boot firmware keeps its variables safe only with SMM.
        sub(domain.find('features'), 'smm', {'state': 'on'})
    devices_boot = [d for d in model['disks'] + model['networks'] + model['hostdevs'] if d.get('boot_order')]
    if not devices_boot:
        sub(os_elem, 'boot', {'dev': 'hd'})
        if any(d['device'] == 'cdrom' for d in model['disks']):
            sub(os_elem, 'boot', {'dev': 'cdrom'})


def _controllers(domain, model, _host):
    ports = model.get('pcie_root_ports') or 0
    if not ports:
        return
    # Free ports are what a running q35 guest hot-plugs into; libvirt refuses root ports without pcie-root.
    devices = _devices(domain)
    sub(devices, 'controller', {'type': 'pci', 'index': '0', 'model': 'pcie-root'})
    for _port in range(ports):
        sub(devices, 'controller', {'type': 'pci', 'model': 'pcie-root-port'})


def _memory_backing(domain, model, _host):
    backing = model['memory_backing']
    if not (backing.get('source') or backing.get('access') or backing.get('hugepages')):
        return
    elem = sub(domain, 'memoryBacking')
    if backing.get('hugepages'):
        hugepages = sub(elem, 'hugepages')
        if backing.get('hugepage_size'):
            sub(hugepages, 'page', {'size': backing['hugepage_size'] // 1024, 'unit': 'KiB'})
    if backing.get('source'):
        sub(elem, 'source', {'type': backing['source']})
    if backing.get('access'):
        sub(elem, 'access', {'mode': backing['access']})


def _tpm(domain, model, host):
    if not model['tpm']:
        return
    if host.tpm_emulator is False:
        raise InvalidInput('this host offers no emulated TPM (install swtpm and swtpm-tools), or set tpm: false')
    tpm = sub(_devices(domain), 'tpm', {'model': 'tpm-crb'})
    sub(tpm, 'backend', {'type': 'emulator', 'version': '2.0'})


def _disks(domain, model, _host):
    devices = _devices(domain)
    for disk in model['disks']:
        devices.append(disk_element(disk))
    if any(d['bus'] == 'scsi' for d in model['disks']):
        # Without it libvirt would add an emulated LSI controller.
        sub(devices, 'controller', {'type': 'scsi', 'index': '0', 'model': 'virtio-scsi'})


def disk_element(disk):
    """<disk> of one resolved model disk."""
    path = disk.get('path') or ''
    if disk.get('volume'):
        kind, source = 'volume', {'pool': disk['pool'], 'volume': disk['volume']}
    elif path.startswith('/dev/'):
        kind, source = 'block', {'dev': path}
    elif path:
        kind, source = 'file', {'file': path}
    else:
        kind, source = 'file', None  # an empty cdrom drive
    elem = new_element('disk', {'type': kind, 'device': disk['device']})
    sub(elem, 'driver', {'name': 'qemu', 'type': disk['format'], 'cache': disk.get('cache'),
                         'discard': disk.get('discard')})
    if source:
        sub(elem, 'source', source)
    sub(elem, 'target', {'dev': disk['target'], 'bus': disk['bus']})
    if disk.get('readonly'):
        sub(elem, 'readonly')
    if disk.get('boot_order'):
        sub(elem, 'boot', {'order': disk['boot_order']})
    return elem


def _networks(domain, model, _host):
    devices = _devices(domain)
    for network in model['networks']:
        kind = network['type']
        elem = sub(devices, 'interface', {'type': 'user' if kind == 'passt' else kind})
        if network.get('mac'):
            sub(elem, 'mac', {'address': network['mac']})
        if kind == 'network':
            sub(elem, 'source', {'network': network['source']})
        elif kind == 'bridge':
            sub(elem, 'source', {'bridge': network['source']})
        elif kind == 'direct':
            sub(elem, 'source', {'dev': network['source'], 'mode': 'bridge'})
        elif kind == 'passt':
            sub(elem, 'backend', {'type': 'passt'})
        sub(elem, 'model', {'type': network['model']})
        if network.get('boot_order'):
            sub(elem, 'boot', {'order': network['boot_order']})


def _hostdevs(domain, model, _host):
    devices = _devices(domain)
    for hostdev in model['hostdevs']:
        elem = sub(devices, 'hostdev', {'mode': 'subsystem', 'type': hostdev['type'],
                                        'managed': 'yes' if hostdev['managed'] else 'no'})
        source = sub(elem, 'source')
        if hostdev['type'] == 'pci':
            dom, bus, slot, function = parse_pci_address(hostdev['address'])
            sub(source, 'address', {'domain': '0x%04x' % dom, 'bus': '0x%02x' % bus,
                                    'slot': '0x%02x' % slot, 'function': '0x%x' % function})
        elif hostdev.get('vendor'):
            sub(source, 'vendor', {'id': hostdev['vendor']})
            sub(source, 'product', {'id': hostdev['product']})
        else:
            bus, device = parse_usb_address(hostdev['address'])
            sub(source, 'address', {'bus': bus, 'device': device})
        if hostdev.get('boot_order'):
            sub(elem, 'boot', {'order': hostdev['boot_order']})


def _filesystems(domain, model, _host):
    devices = _devices(domain)
    for share in model['filesystems']:
        elem = sub(devices, 'filesystem', {'type': 'mount', 'accessmode': 'passthrough'})
        sub(elem, 'driver', {'type': 'virtiofs'})
        sub(elem, 'source', {'dir': share['source']})
        sub(elem, 'target', {'dir': share['target']})
        if share.get('readonly'):
            sub(elem, 'readonly')


def _display(domain, model, _host):
    devices = _devices(domain)
    graphics = model['graphics']
    family = model['os']
    if graphics['type'] != 'none':
        elem = sub(devices, 'graphics', {'type': graphics['type']})
        if graphics['listen'] == 'none':
            sub(elem, 'listen', {'type': 'none'})
        else:
            sub(elem, 'listen', {'type': 'address', 'address': graphics['listen']})
        if graphics.get('gl'):
            sub(elem, 'gl', {'enable': 'yes'})
        if graphics['type'] == 'spice' and family != 'other':
            # Clipboard and display resizing through the SPICE agent.
            channel = sub(devices, 'channel', {'type': 'spicevmc'})
            sub(channel, 'target', {'type': 'virtio', 'name': 'com.redhat.spice.0'})
        if family == 'linux':
            sub(devices, 'input', {'type': 'tablet', 'bus': 'virtio'})
            sub(devices, 'input', {'type': 'keyboard', 'bus': 'virtio'})
        else:
            sub(devices, 'input', {'type': 'tablet', 'bus': 'usb'})
    if model['video'] != 'none' or graphics['type'] != 'none':
        # video 'none' is written out, or libvirt would add a default card.
        video = sub(sub(devices, 'video'), 'model', {'type': model['video']})
        if graphics.get('gl'):
            sub(video, 'acceleration', {'accel3d': 'yes'})
    if model['sound'] != 'none':
        sub(devices, 'sound', {'model': model['sound']})


def _guest_devices(domain, model, _host):
    devices = _devices(domain)
    family = model['os']
    if family == 'linux':
        console = sub(devices, 'console', {'type': 'pty'})
        sub(console, 'target', {'type': 'virtio'})
    elif family == 'other':
        sub(devices, 'console', {'type': 'pty'})
    if model['guest_agent']:
        channel = sub(devices, 'channel', {'type': 'unix'})
        sub(channel, 'target', {'type': 'virtio', 'name': 'org.qemu.guest_agent.0'})
    if model['rng']:
        rng = sub(devices, 'rng', {'model': 'virtio'})
        sub(rng, 'backend', {'model': 'random'}, '/dev/urandom')
    # 'none' is written out, or libvirt would add a balloon.
    sub(devices, 'memballoon', {'model': 'virtio' if model['balloon'] else 'none'})


# Top-level <domain> children an extra_xml fragment may have as its root.
_DOMAIN_CHILDREN = frozenset(DOMAIN_ORDER)


def _extra_xml(domain, model, _host):
    for index, text in enumerate(model.get('extra_xml') or []):
        fragment = parse(text, 'model.extra_xml[%d]' % index)
        overlay(wrap_fragment(fragment), domain)


def wrap_fragment(fragment):
    """A <domain> for an extra_xml fragment whose root is a domain section or a device."""
    if fragment.tag == 'domain':
        return fragment
    domain = new_element('domain')
    device = fragment.tag not in _DOMAIN_CHILDREN or (fragment.tag == 'memory' and fragment.get('model'))
    if device:
        sub(domain, 'devices').append(fragment)
    else:
        domain.append(fragment)
    return domain


BUILDERS = {
    'platform': _platform,
    'memory': _memory,
    'cpu': _cpu,
    'firmware': _firmware,
    'controllers': _controllers,
    'memory_backing': _memory_backing,
    'tpm': _tpm,
    'disks': _disks,
    'networks': _networks,
    'hostdevs': _hostdevs,
    'filesystems': _filesystems,
    'display': _display,
    'guest_devices': _guest_devices,
    'extra_xml': _extra_xml,
}
