<?php
/**
 * As palavras da página do vipgate no WHMCS (Addons > vipgate) em português do Brasil (o
 * idioma "portuguese-br" do administrador). %s são os valores, na ordem.
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

$_ADDONLANG = [
    'stub_version' => 'Versão do stub',
    'settings' => 'Configurações',
    'settings_not_entered' => 'ainda não preenchidas: Setup > Addon Modules > vipgate > Configure',
    'bridge' => 'Ponte',
    'bridge_answers' => 'A ponte responde',
    'answers_yes' => 'sim (HTTP %s)',
    'answers_no' => 'não: %s',
    'bridge_version' => 'Versão da ponte',
    'not_reported' => 'não informada',
    'deliveries' => 'Entregas',
    'paused_until' => 'pausadas até %s UTC depois de uma que a ponte não aceitou',
    'events_waiting' => 'Eventos à espera',
    'oldest_from' => '%s, o mais antigo de %s UTC',
    'events_rejected' => 'Eventos recusados',
    'rejected_kept' => '%s (guardados por 30 dias em mod_vipgate_spool; veja vipgate check)',
    'outbox' => 'Fila de saída',
    'outbox_unreadable' => 'não pode ser lida: %s',
    'also_installed' => 'Também instalado',
    'other_install' => 'includes/hooks/vipgate.php também está instalado. Ele continua encaminhando os hooks'
        . ' com as próprias configurações até que as do addon sejam salvas, então nada se perde nesse meio'
        . ' tempo (os eventos dele que esperam estão na mesma tabela e o addon os envia); cada hook continua'
        . ' sendo enviado uma vez. Depois de salvá-las, apague includes/hooks/vipgate.php,'
        . ' includes/hooks/_vipgate_stub.php e includes/hooks/_vipgate_config.php.',
    'open_admin_page' => 'Abrir a página de administração do vipgate',
];
